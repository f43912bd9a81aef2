"""Reverse-complement averaging in the attribution layer (``attribution.reverse_complement``)."""

import numpy as np
import pytest
import torch
from models import SmallCNN, one_hot
from torch import nn

from lrp.attribution.attribute import attribute_regions, reverse_complement_ohe


class RCSymmetric(nn.Module):
    """Conv filters in reverse-complement pairs (channels ACGT -> TGCA, taps reversed), ReLU, global mean,
    one weight per pair: ``f(rc x) == f(x)`` by construction."""

    def __init__(self, k=4, width=7, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(k, 4, width, generator=g)
        self.conv = nn.Conv1d(4, 2 * k, width, padding=width // 2)
        self.conv.weight.data = torch.cat([w, w.flip(1, 2)])
        self.conv.bias.data = torch.randn(k, generator=g).repeat(2) * 0.1
        head = torch.randn(k, generator=g)
        self.head = nn.Linear(2 * k, 1)
        self.head.weight.data = torch.cat([head, head])[None]

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(2))


def _run(model, x, method, rc, alphabet="ACGT"):
    return attribute_regions(
        model, x, method, {"index": 0}, alphabet=alphabet, progress=False, reverse_complement=rc
    )


@pytest.mark.parametrize("method", ["gradient-x-input", "lrp", "plrp-lambda"])
def test_rc_symmetric_model_unchanged(method):
    model = RCSymmetric().eval()
    x = one_hot(6, 40, seed=2).numpy()
    assert torch.allclose(
        model(torch.as_tensor(x)), model(torch.as_tensor(reverse_complement_ohe(x))), atol=1e-5
    )
    one, both = _run(model, x, method, False), _run(model, x, method, True)
    np.testing.assert_allclose(both["relevance"], one["relevance"], atol=1e-5)
    np.testing.assert_allclose(both["target"], one["target"], atol=1e-5)


@pytest.mark.parametrize("alphabet", ["ACGT", "TGAC"])
def test_general_model_is_the_mean_of_both_strands(alphabet):
    torch.manual_seed(0)
    model = SmallCNN(length=50).eval()
    x = one_hot(5, 50, seed=3).numpy()
    fwd = _run(model, x, "lrp", False, alphabet)
    rev = _run(model, reverse_complement_ohe(x), "lrp", False, alphabet)
    both = _run(model, x, "lrp", True, alphabet)
    want = (fwd["relevance"] + reverse_complement_ohe(rev["relevance"])) / 2
    np.testing.assert_allclose(both["relevance"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both["target"], (fwd["target"] + rev["target"]) / 2, rtol=1e-6)
    assert not np.allclose(
        both["relevance"], fwd["relevance"], atol=1e-4
    )  # the option does something
    # relevance stays on the present base (the reverse strand's mapped back onto the forward one)
    assert np.all(both["relevance"][x == 0] == 0)
    assert reverse_complement_ohe(reverse_complement_ohe(x)).tobytes() == x.tobytes()
