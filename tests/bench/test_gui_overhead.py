def test_gui_overhead_quick_prints_ratio_and_stall(run_bench, shared_data):
    completed = run_bench("gui_overhead.py", "--quick", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    assert "throughput windowed/headless, median of the 1 pairs = " in completed.stdout
    assert "GUI thread busy" in completed.stderr
    assert "gui event loop: largest stall during a run " in completed.stdout
