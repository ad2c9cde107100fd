def test_run_all_quick_prints_figures_and_placeholders(run_bench, shared_data):
    completed = run_bench("run_all", "--quick", "--threads", "1", "--only", "inference", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("inference (cpu, fp32, ")
    assert any(line.startswith("gui overhead: ") and "bench/gui_overhead.py" in line for line in lines)
    assert any(line.startswith("gpu check: ") for line in lines)
