def test_before_after_quick_prints_ratios(run_bench, shared_data):
    completed = run_bench("before_after.py", "--quick", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    assert "before/after, logphase student, SST-2 bucketed: " in completed.stdout
    assert "before/after, token embedding construction " in completed.stdout
