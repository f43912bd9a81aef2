"""PLRP pruning by relevance mass: the definition on hand-built rows, a full stable sort as the oracle, and the
CPU kernels against the tensor-op path (the one a GPU runs)."""

import pytest
import torch

from lrp.engine import kernels
from lrp.engine.prune import mask_of, prune, pruning_mask, rescale_kept, zero_pruned


def _tensor_ops(monkeypatch):
    """Send every call through the tensor-op path, as on a GPU."""
    monkeypatch.setattr(kernels, "usable", lambda *tensors: False)


@pytest.fixture(params=["kernel", "tensor-ops"])
def path(request, monkeypatch):
    """Each test runs on the CPU kernels and on the tensor-op path."""
    if request.param == "tensor-ops":
        _tensor_ops(monkeypatch)
    return request.param


def test_plrp_lambda_conserves_each_sign(path):
    r = torch.randn(7, 3, 50)
    r[2] = r[2].abs()  # all positive
    r[3] = -r[3].abs()  # all negative
    pruned = prune(r, 0.4, 0.2)
    mask = mask_of(r, pruned)
    assert bool((pruned[mask] == 0).all()) and bool(mask.any())
    for sign in (1, -1):
        before = (r * sign).clamp(min=0).sum((1, 2))
        after = (pruned * sign).clamp(min=0).sum((1, 2))
        torch.testing.assert_close(after, before)
    # the kept entries keep their sign and order
    assert bool((torch.sign(pruned[~mask]) == torch.sign(r[~mask])).all())
    # rescaling the relevance itself with its own pruned set is PLRP-λ again
    torch.testing.assert_close(rescale_kept(r, r, pruned), pruned, rtol=1e-6, atol=0)


def test_pruning_set_follows_the_mass_quantile_definition(path):
    # positive entries sorted: 1, 2, 3, 4 (total 10). p = 0.3 -> cumulative 1, 3 <= 3: prune {1, 2}
    r = torch.tensor([[4.0, 1.0, 3.0, 2.0, -5.0, -1.0, 0.0]])
    mask = pruning_mask(r, 0.3, 0.0)
    assert mask.tolist() == [[False, True, False, True, False, False, False]]
    # negative masses 1, 5 (total 6); p- = 0.2 -> 1 <= 1.2: prune the -1 only
    assert pruning_mask(r, 0.0, 0.2).tolist() == [[False] * 5 + [True, False]]
    # ties: 1, 1, 1, 1 with p = 0.5 -> the first two by position (stable sort)
    assert pruning_mask(torch.ones(1, 4), 0.5, 0.0).tolist() == [[True, True, False, False]]
    # all negative with p+ only: nothing pruned; zeros are never pruned
    assert not pruning_mask(-torch.ones(1, 4), 0.9, 0.0).any()
    assert not pruning_mask(torch.zeros(1, 4), 0.9, 0.9).any()
    # a single entry is never pruned for p < 1 (its cumulative mass is the whole)
    assert not pruning_mask(torch.tensor([[2.5]]), 0.99, 0.99).any()
    # p = 0 prunes nothing
    assert not pruning_mask(torch.randn(3, 20), 0.0, 0.0).any()


def _sorted_prefix_mask(v, p):
    """The definition, by a full stable sort: v (N, D) >= 0 -> pruned mask (N, D)."""
    sv, order = torch.sort(v, dim=1, stable=True)
    cs = torch.cumsum(sv.double(), dim=1)
    pruned_sorted = (cs <= p * cs[:, -1:]) & (sv > 0)
    return torch.zeros_like(pruned_sorted).scatter_(1, order, pruned_sorted)


def _hard_rows(seed, d=40000):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(10, d, generator=g).abs() ** 3 * (torch.rand(10, d, generator=g) > 0.4)
    v[3] = (torch.rand(d, generator=g) * 5).round()  # heavy ties: whole buckets of equal values
    v[4] = torch.exp(torch.randn(d, generator=g) * 4)  # heavy tail
    v[5, ::7] = 2.0  # ties at the threshold
    v[6] = 1.0  # one bucket holds the whole row
    v[7, :] = 0.0
    v[7, 123] = 3.0  # a single entry
    v[8] = torch.rand(d, generator=g) * 1e-30  # tiny values (denormal-free float32 range)
    signs = torch.where(torch.rand(10, d, generator=g) < 0.5, -1.0, 1.0)
    return v * signs


@pytest.mark.parametrize("p", [0.1, 0.25, 0.6])
def test_histogram_select_equals_the_full_sort(p, path):
    r = _hard_rows(int(p * 100))
    p_neg = p / 2
    fast = pruning_mask(r, p, p_neg)
    want = _sorted_prefix_mask(r.clamp(min=0), p) | _sorted_prefix_mask((-r).clamp(min=0), p_neg)
    assert torch.equal(fast, want)
    # PLRP-λ keeps each sign's mass, and the float64 relevance path agrees with float32
    pruned = prune(r, p, p_neg)
    for sign in (1, -1):
        torch.testing.assert_close(
            (pruned * sign).clamp(min=0).sum(1), (r * sign).clamp(min=0).sum(1)
        )
    assert torch.equal(pruning_mask(r.double(), p, p_neg), want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_kernels_equal_the_tensor_ops(dtype, monkeypatch):
    """The CPU kernels make the same decisions as the tensor ops a GPU runs: the same pruned relevance to
    the last bit, the same kept activations, the same rescaled skip relevance up to summation order."""
    g = torch.Generator().manual_seed(7)
    r = (torch.randn(6, 8, 300, generator=g) * torch.rand(6, 8, 300, generator=g) ** 4).to(dtype)
    r[0] = r[0].round()  # ties
    r[1, :4] = 0.0
    x = torch.randn(6, 8, 300, generator=g).to(dtype)
    fast = {}
    for p_pos, p_neg in ((0.25, 0.125), (0.5, 0.0), (0.0, 0.3)):
        pruned = prune(r, p_pos, p_neg)
        fast[p_pos, p_neg] = pruned, zero_pruned(x, r, pruned), rescale_kept(x, r, pruned)
    _tensor_ops(monkeypatch)
    for (p_pos, p_neg), (pruned, kept, rescaled) in fast.items():
        assert torch.equal(prune(r, p_pos, p_neg), pruned)
        assert torch.equal(zero_pruned(x, r, pruned), kept)
        torch.testing.assert_close(rescale_kept(x, r, pruned), rescaled, rtol=1e-6, atol=0)
        mask = mask_of(r, pruned)
        assert bool((kept[mask] == 0).all()) and torch.equal(kept[~mask], x[~mask])
        for sign in (1, -1):  # x's own masses are kept per sign (no sign here loses every entry)
            torch.testing.assert_close(
                (rescaled * sign).clamp(min=0).sum((1, 2)), (x * sign).clamp(min=0).sum((1, 2))
            )


def test_pruning_edge_cases(path):
    empty = torch.zeros(0, 5)
    assert prune(empty, 0.3, 0.1).shape == (0, 5)
    assert rescale_kept(empty, empty, prune(empty, 0.3, 0.1)).shape == (0, 5)
    zero = torch.zeros(2, 4)
    assert not pruning_mask(zero, 0.5, 0.5).any()
    assert torch.equal(rescale_kept(zero, zero, prune(zero, 0.5, 0.5)), zero)
    # subnormal float32 entries are ordered and pruned like any others
    assert pruning_mask(torch.tensor([[1e-45, 2e-45, 1.0]]), 0.5, 0.0).tolist() == [
        [True, True, False]
    ]
    # half precision relevance is pruned as its float32 values
    for dtype in (torch.float16, torch.bfloat16):
        r = torch.tensor([[4.0, 1.0, 3.0, 2.0, -5.0, -1.0]], dtype=dtype)
        assert pruning_mask(r, 0.3, 0.2).tolist() == [[False, True, False, True, False, True]]
    # a non-contiguous view is pruned as its values
    r = torch.randn(8, 30).t()
    assert torch.equal(prune(r, 0.3, 0.1), prune(r.contiguous(), 0.3, 0.1))
