def test_student_throughput_quick_prints_ratios(run_bench, shared_data):
    completed = run_bench("student_throughput.py", "--quick", "--alone", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    assert "student throughput, SST-2 bucketed: " in completed.stdout
    assert "student/BERT = " in completed.stdout
    assert "FLOP rate, SST-2 bucketed, student: " in completed.stdout
    assert "counting 3·(2·N·B·T + 4·L·B·T²·d)" in completed.stdout
    assert "FLOP rate, SST-2 bucketed, student timed back to back (" in completed.stdout
