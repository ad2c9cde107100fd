import pytest
import torch


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without CUDA")
def test_gpu_check_without_cuda_says_so(run_bench):
    completed = run_bench("gpu_check.py")

    assert completed.returncode != 0
    assert "needs a CUDA device" in completed.stderr
    assert completed.stdout == ""
