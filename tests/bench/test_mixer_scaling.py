def test_mixer_scaling_quick_prints_ratios(run_bench):
    completed = run_bench("mixer_scaling.py", "--quick", "--threads", "1")

    assert completed.returncode == 0, completed.stderr
    assert "mixer scaling T=64 " in completed.stdout
    assert "time softmax/spectral = " in completed.stdout
    assert "toeplitz/fft rule (cpu): " in completed.stdout
