from engine.run_store import RunStore


def test_ablation_pools_seeds_per_variant(run_bench, shared_data, tmp_path):
    small_run = ["--train-limit", "64", "--dev-limit", "32", "--epochs", "1", "--d-model", "32", "--layers", "1", "--heads", "4"]
    database = tmp_path / "runs.sqlite3"
    completed = run_bench(
        "ablation.py", "--data", str(shared_data / "glue"), "--task", "rte", "--seeds", "1,2",
        "--variant", "softmax: --mixer softmax", "--variant", "spectral: --mixer spectral", "--db", str(database), "--", *small_run,
    )

    assert completed.returncode == 0, completed.stderr
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")] for line in completed.stdout.splitlines()
            if line.startswith("| softmax |") or line.startswith("| spectral |")}
    assert sorted(rows) == ["softmax", "spectral"]
    assert rows["spectral"][1] == "`--mixer spectral`"
    assert rows["spectral"][2].startswith("accuracy ")
    assert "±" in rows["spectral"][2]
    assert len(rows["spectral"][3].split(", ")) == 2
    assert f"lampreia compare --pool-seeds 1 3 2 4 --db {database}" in completed.stdout

    store = RunStore(database)
    records = store.list_runs()
    store.close()
    assert sorted(record.name for record in records) == ["softmax seed 1", "softmax seed 2", "spectral seed 1", "spectral seed 2"]
    assert {record.config["student"]["mixer"] for record in records} == {"softmax", "spectral"}


def test_ablation_rejects_unnamed_variant(run_bench, shared_data):
    completed = run_bench("ablation.py", "--data", str(shared_data / "glue"), "--variant", "--mixer softmax")

    assert completed.returncode != 0
    assert 'The variant "--mixer softmax" has no name' in completed.stderr


def test_ablation_marks_variants_with_same_settings(run_bench, shared_data):
    small_run = ["--train-limit", "64", "--dev-limit", "32", "--epochs", "1", "--d-model", "32", "--layers", "1", "--heads", "4"]
    completed = run_bench(
        "ablation.py", "--data", str(shared_data / "glue"), "--task", "rte", "--seeds", "1",
        "--variant", "preset:", "--variant", "logphase: --mixer logphase", "--variant", "softmax: --mixer softmax", "--", *small_run,
    )

    assert completed.returncode == 0, completed.stderr
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")] for line in completed.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| variant") and not line.startswith("| ---")}
    assert rows["preset"][1] == "(none) (the preset's own settings)"
    # The offline-demo preset's mixer is the log-phase one.
    assert rows["logphase"][1] == "`--mixer logphase` (the preset's own settings)"
    assert rows["softmax"][1] == "`--mixer softmax`"
    assert "Note: the variants preset, logphase train the same settings, so their rows differ by seed noise only." in completed.stdout
