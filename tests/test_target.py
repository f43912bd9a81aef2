"""The explained scalar: the profile reduction is the field's (mean-normalised logits, bpnet-lite's
``ProfileWrapper``), on one- and two-strand profiles, for the LRP family and the autograd methods alike."""

import pytest
import torch
from models import BPNetLike, one_hot, randomize_batchnorm

from lrp import explain
from lrp.core.errors import PlrpError
from lrp.engine.target import initial_relevance, normalize_target, target_scalar


def _direct(logits):
    """``sum(softmax(m) * m)`` with ``m = z - mean(z)`` over every entry after the batch, computed
    directly from the definition (``logits (N, ...)`` -> ``(N,)``)."""
    z = logits.flatten(1).double()
    m = z - z.mean(1, keepdim=True)
    return (torch.exp(m) / torch.exp(m).sum(1, keepdim=True) * m).sum(1)


@pytest.mark.parametrize("shape", [(5, 40), (5, 2, 40)])
def test_profile_reduction_is_the_softmax_weighted_sum_of_mean_normalised_logits(shape):
    g = torch.Generator().manual_seed(0)
    logits = (
        torch.randn(shape, generator=g) * 3 + 50
    )  # a large common offset the target must ignore
    target = normalize_target({"reduction": "profile"})
    r, f = initial_relevance(logits, target)
    torch.testing.assert_close(f.double(), _direct(logits), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        target_scalar(logits, target).double(), _direct(logits), rtol=1e-5, atol=1e-5
    )
    assert r.shape == logits.shape
    torch.testing.assert_close(r.flatten(1).sum(1), f)
    # the offset changes nothing: f is a function of z - mean(z)
    _, f0 = initial_relevance(logits - 50, target)
    torch.testing.assert_close(f0, f, rtol=1e-4, atol=1e-4)
    # the entries are gradient times logit (the softmax held constant)
    z = logits.clone().requires_grad_()
    (grad,) = torch.autograd.grad(target_scalar(z, target).sum(), z)
    torch.testing.assert_close(r, grad * logits, rtol=1e-5, atol=1e-5)


def test_profile_index_reduces_one_task_and_refuses_an_index_on_a_flat_profile():
    logits = torch.randn(3, 2, 30, generator=torch.Generator().manual_seed(1))
    r, f = initial_relevance(logits, normalize_target({"index": 1, "reduction": "profile"}))
    torch.testing.assert_close(f.double(), _direct(logits[:, 1]), rtol=1e-5, atol=1e-5)
    assert bool((r[:, 0] == 0).all()) and bool((r[:, 1] != 0).any())
    with pytest.raises(PlrpError, match="remove target.index"):
        initial_relevance(logits[:, 0], normalize_target({"index": 1, "reduction": "profile"}))


@pytest.mark.parametrize("method", ["lrp", "plrp-lambda", "gradient-x-input"])
def test_every_method_explains_the_same_profile_scalar(method):
    model = randomize_batchnorm(BPNetLike())
    x = one_hot(4, 100, seed=3)
    target = {"output": "profile", "reduction": "profile"}
    out = explain(model, x, method=method, target=target)
    torch.testing.assert_close(
        out.target.double(), _direct(model(x)["profile"].detach()), rtol=1e-5, atol=1e-5
    )


def test_profile_target_equals_bpnet_lites_profile_wrapper():
    bpnet = pytest.importorskip("bpnetlite.bpnet")
    torch.manual_seed(0)
    model = bpnet.BPNet(
        n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=0, trimming=10, verbose=False
    ).eval()
    x = one_hot(4, 120, seed=5)
    with torch.no_grad():
        want = bpnet.ProfileWrapper(model)(x)[:, 0]
    target = {"output": 0, "reduction": "profile"}
    for method in ("lrp", "gradient-x-input"):
        got = explain(model, x, method=method, target=target)
        torch.testing.assert_close(got.target, want, rtol=1e-5, atol=1e-5)
    # gradient x input of the wrapper with its softmax held constant (what the field attributes)
    leaf = x.clone().requires_grad_()
    logits = model(leaf)[0].flatten(1)
    m = logits - logits.mean(1, keepdim=True)
    (g,) = torch.autograd.grad((torch.softmax(m, 1).detach() * m).sum(), leaf)
    gxi = explain(model, x, method="gradient-x-input", target=target)
    torch.testing.assert_close(gxi.relevance, (g * x).detach(), rtol=1e-4, atol=1e-6)
