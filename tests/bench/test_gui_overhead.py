def test_gui_overhead_quick_prints_ratio_and_stall(run_bench, shared_data):
    completed = run_bench("gui_overhead.py", "--quick", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    assert "throughput windowed/headless, median of the 1 pairs = " in completed.stdout
    assert "GUI thread busy" in completed.stderr
    assert "gui event loop: largest stall during a run " in completed.stdout


def test_gui_overhead_by_part_prints_each_part(run_bench, shared_data):
    completed = run_bench("gui_overhead.py", "--quick", "--by-part", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    for part in ("headless, Qt loaded", "run controller, no window", "windowed"):
        assert f"{part}/headless, median of the 1 pairs = " in completed.stdout


def test_gui_overhead_intervals_prints_each_variant(run_bench, shared_data):
    completed = run_bench("gui_overhead.py", "--quick", "--intervals", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    for variant in ("windowed", "windowed, redraws every 1 s"):
        assert "gui overhead by interval (SST-2 " in completed.stdout
        assert f"{variant}/headless, median of the 1 pairs = " in completed.stdout


def test_turn_ratios_split_steps_by_gui_state():
    from bench.gui_overhead import HALF_TURN_S, turn_ratios

    # Steps of 0.05 s count 100 samples each while the GUI sleeps and 90 while it works. The sleeps
    # are [0.5, 1.0), [1.5, 2.0) and [2.5, 3.0).
    pauses = [(start, start + HALF_TURN_S) for start in (0.5, 1.5, 2.5)]
    arrivals = [(0.0, 0.0, 0.05)]
    for index in range(1, 61):
        now = index * 0.05 + 0.001
        sleeping = any(start <= now - 0.05 and now <= end for start, end in pauses)
        arrivals.append((now, 100.0 if sleeping else 90.0, 0.05))

    ratios = turn_ratios(arrivals, pauses)

    # Working halves between two sleeps: [1.0, 1.5) and [2.0, 2.5).
    assert len(ratios) == 2
    for ratio in ratios:
        assert abs(ratio - 0.9) < 1e-9


def test_turn_ratios_skip_steps_after_an_evaluation():
    from bench.gui_overhead import turn_ratios

    pauses = [(0.5, 1.0), (1.5, 2.0)]
    # One step per 0.05 s, except a 0.3 s evaluation before the step at 1.4 s, which counts 1000 samples.
    arrivals = [(0.0, 0.0, 0.05)] + [(t / 100, 100.0, 0.05) for t in range(5, 106, 5)]
    arrivals += [(1.4, 1000.0, 0.05)] + [(t / 100, 100.0, 0.05) for t in range(145, 201, 5)]

    ratios = turn_ratios(arrivals, pauses)

    assert len(ratios) == 1
    assert abs(ratios[0] - 1.0) < 1e-9


def test_median_interval_narrows_with_more_values():
    import random

    from bench.common import median, median_interval

    generator = random.Random(1)
    few = [generator.gauss(1.0, 0.1) for _ in range(20)]
    many = [generator.gauss(1.0, 0.1) for _ in range(500)]

    low, high = median_interval(few)
    many_low, many_high = median_interval(many)

    assert low < median(few) < high
    assert many_low < 1.0 < many_high
    assert many_high - many_low < (high - low) / 2
    assert median_interval(few) == (low, high)


def test_median_interval_of_a_ratio():
    from bench.common import median_interval

    low, high = median_interval([0.9] * 10, over=[1.0] * 10)

    assert abs(low - 0.9) < 1e-12
    assert abs(high - 0.9) < 1e-12


def test_stall_watch_writes_during_stall(tmp_path):
    import time

    from bench.gui_overhead import StallWatch

    watch = StallWatch(tmp_path / "stacks.txt", limit_ms=300)
    try:
        # Re-armed in time: nothing is written.
        for _ in range(5):
            watch.arm(0.01)
            time.sleep(0.01)
        watch.disarm()
        time.sleep(0.5)
        assert watch.stacks() == ""

        watch.arm(0.01)
        time.sleep(0.8)
        stacks = watch.stacks()
    finally:
        watch.close()

    assert "test_stall_watch_writes_during_stall" in stacks
