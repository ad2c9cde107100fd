def test_teacher_cost_quick_prints_both_figures(run_bench, shared_data):
    completed = run_bench("teacher_cost.py", "--quick", "--threads", "1", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    assert "teacher cache (" in completed.stdout
    assert "with 0 forward passes" in completed.stdout
    assert "3 teachers/1 teacher = " in completed.stdout
