def test_offline_demo_prints_a_table_row(run_bench, shared_data):
    small_run = ["--train-limit", "96", "--dev-limit", "48", "--epochs", "1", "--d-model", "32", "--layers", "1", "--heads", "4"]
    completed = run_bench("offline_demo.py", "--data", str(shared_data / "glue"), "--tasks", "mrpc", "--", *small_run)

    assert completed.returncode == 0, completed.stderr
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| mrpc |")]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells[3] == "96"  # training rows actually read, not the preset's limit
    assert cells[4] == "48"
    assert "accuracy" in cells[6]
    assert "f1" in cells[6]
