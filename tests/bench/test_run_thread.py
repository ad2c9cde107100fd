def test_run_thread_quick_prints_ratios(run_bench, shared_data):
    completed = run_bench("run_thread.py", "--quick", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("run thread (SST-2 bucketed, default student, ")
    assert "speed on the QThread / on the main thread = " in completed.stdout
    assert "with the GUI's garbage collection " in completed.stdout
    assert "minor page faults per pass" in completed.stderr
