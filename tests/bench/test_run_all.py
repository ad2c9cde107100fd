import torch


def test_run_all_quick_prints_chosen_figures(run_bench, shared_data):
    completed = run_bench("run_all", "--quick", "--threads", "1", "--only", "inference,gpu_check", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("inference (cpu, fp32, ")
    if not torch.cuda.is_available():
        assert lines[1].startswith("gpu check: skipped, ")


def test_run_all_rejects_unknown_names(run_bench):
    completed = run_bench("run_all", "--only", "inference,no_such_bench")

    assert completed.returncode == 2
    assert "no_such_bench" in completed.stderr
