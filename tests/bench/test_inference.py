def test_inference_quick_prints_tokens_per_second(run_bench):
    completed = run_bench("inference.py", "--quick", "--threads", "1")

    assert completed.returncode == 0, completed.stderr
    assert "inference (cpu, fp32, batch 4, length 32): " in completed.stdout
    assert "peak RSS " in completed.stdout
    assert "this CPU/reference = " in completed.stdout
