"""The CUDA path gives what the CPU gives: every method, the pruning histogram, and a shard through the CLI.

Skipped where no GPU is present (CI has none); run on a GPU machine with ``pytest tests/test_cuda.py``.
"""

import numpy as np
import pytest
import torch
from models import BPNetLike, one_hot, randomize_batchnorm

from lrp import explain
from lrp.engine.prune import pruning_mask

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("method", ["lrp", "plrp-lambda", "plrp-m", "gradient-x-input"])
def test_cuda_equals_cpu(method):
    torch.manual_seed(0)
    model = randomize_batchnorm(BPNetLike(filters=16, n_layers=4)).double()
    x = one_hot(16, 300, seed=1).double()
    target = {"output": "counts", "index": 1}
    cpu = explain(model, x, method=method, target=target, device="cpu")
    gpu = explain(model, x, method=method, target=target, device="cuda")
    assert gpu.relevance.device.type == "cpu"  # results come back to the host
    torch.testing.assert_close(gpu.target, cpu.target, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(gpu.relevance, cpu.relevance, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(gpu.hypothetical, cpu.hypothetical, rtol=1e-6, atol=1e-9)
    assert next(model.parameters()).device.type == "cpu"  # the user's model is not moved


def test_cuda_pruning_set_equals_cpu():
    g = torch.Generator().manual_seed(0)
    r = torch.randn(32, 64, 1000, generator=g) * torch.rand(32, 64, 1000, generator=g) ** 4
    for p in (0.1, 0.25, 0.5):
        assert torch.equal(pruning_mask(r.cuda(), p, p / 2).cpu(), pruning_mask(r, p, p / 2))


def test_deeplift_shap_runs_on_cuda():
    torch.manual_seed(0)
    from lrp.demo.model import build_model

    model = build_model(n_tasks=2, length=200, filters=8).eval()
    x = one_hot(4, 200, seed=2)
    cpu = explain(model, x, method="deeplift-shap", target=0, device="cpu", n_shuffles=4)
    gpu = explain(model, x, method="deeplift-shap", target=0, device="cuda", n_shuffles=4)
    torch.testing.assert_close(gpu.relevance, cpu.relevance, rtol=1e-3, atol=1e-4)


def test_attribute_shard_on_cuda(tmp_path):
    from lrp.attribution.attribute import attribute_regions
    from lrp.demo.model import build_model

    model = build_model(n_tasks=2, length=200, filters=8).eval()
    x = one_hot(40, 200, seed=3).numpy()
    args = {
        "method": "plrp-lambda",
        "target": {"index": 0},
        "batch_size": 16,
        "progress": False,
    }
    cpu = attribute_regions(model, x, device="cpu", **args)
    gpu = attribute_regions(model, x, device="cuda", **args)
    # float32 (and TF32 convolutions, PyTorch's default on CUDA) can move an entry across a pruning
    # threshold: compare the whole, not every entry
    diff = np.abs(gpu["relevance"] - cpu["relevance"]).sum() / np.abs(cpu["relevance"]).sum()
    assert diff < 0.02, diff
    np.testing.assert_allclose(gpu["target"], cpu["target"], rtol=1e-2, atol=1e-3)
    np.testing.assert_array_equal(gpu["layer_names"], cpu["layer_names"])
