"""The seqlet null (lrp/motifs/null.py): its threshold holds the FDR on windows with nothing planted, on
draws from the null family and on a real model's relevance, and planted signal is still called."""

import numpy as np
import pytest
import torch

from lrp.motifs import null as N
from lrp.motifs.seqlets import ProjectedRows, call_seqlets

FDR = 0.05
TOL = 0.01


def _called_share(scores, fdr=FDR):
    """Share of positions inside a seqlet that passes the null, and the kept seqlets."""
    seqlets = call_seqlets(scores)
    kept, info = N.filter_seqlets(scores, seqlets, fdr=fdr)
    covered = np.zeros(scores.shape, bool)
    for e, s, t in kept[["example_idx", "start", "end"]].itertuples(index=False):
        covered[e, s:t] = True
    return covered.mean(), kept, info


def _null_draws(seed, sparse):
    rng = np.random.default_rng(seed)
    s = rng.laplace(0, 1.0, (300, 200))
    if sparse:  # PLRP-like: most positions exactly zero
        s[rng.random(s.shape) < 0.9] = 0.0
    return s


@pytest.mark.parametrize("sparse", [False, True])
def test_null_family_holds_fdr_and_planted_sites_are_called(sparse):
    s = _null_draws(0, sparse)
    share, _, info = _called_share(s)
    assert share <= FDR + TOL, (share, info)
    assert np.isfinite(info["scale_pos"]) and info["scale_pos"] > 0
    # the same windows with sites planted in 10% of them: the sites are called, little else
    planted = s.copy()
    rows = np.arange(0, len(s), 10)
    planted[rows, 80:92] += 6.0  # a 12 bp site at about 13 sd of the null window sums
    _, kept_p, info_p = _called_share(planted)
    pos = kept_p[kept_p["sign"] > 0]
    hit = {
        e
        for e, a, b in pos[["example_idx", "start", "end"]].itertuples(index=False)
        if a < 92 and b > 80
    }
    assert len(hit & set(rows)) >= 0.9 * len(rows)
    off = pos[~pos["example_idx"].isin(rows) | (pos["end"] <= 80) | (pos["start"] >= 92)]
    assert len(off) <= 2 + 2 * FDR * len(pos)  # false calls: about the target share of the calls
    assert info_p["threshold_pos"] > 0


def test_real_model_on_random_sequence_holds_fdr():
    """Relevance of a small CNN (tests/models.py) on random sequence: nothing is planted, so at most the
    target share of positions may be called, for a dense (gradient x input), a conservative (lrp) and a
    pruned (plrp-lambda) method alike."""
    from models import SmallCNN, one_hot

    from lrp.engine.explain import explain

    torch.manual_seed(0)
    model = SmallCNN(length=120).eval()
    x = one_hot(200, 120, seed=1)
    for method, params in (
        ("gradient-x-input", {}),
        ("lrp", {}),
        ("plrp-lambda", {"p_pos": 0.5}),
    ):
        out = explain(model, x, method=method, target={"index": 0}, **params)
        scores = out.relevance.sum(1).double().numpy()
        share, _, info = _called_share(scores)
        assert share <= FDR + TOL, (method, share, info)


def test_sparse_edge_cases_neither_divide_by_zero_nor_call_everything():
    zeros = np.zeros((20, 100))
    kept, info = N.filter_seqlets(zeros, call_seqlets(zeros), fdr=FDR)
    assert len(kept) == 0 and info["threshold_pos"] == np.inf
    one = zeros.copy()
    one[3, 40:50] = 1.0  # one site, every other position exactly zero: no null to tell it from
    kept, info = N.filter_seqlets(one, call_seqlets(one), fdr=FDR)
    assert set(kept["example_idx"]) <= {3} and info["scale_pos"] > 0
    # sites in a tenth of the rows, all else exactly zero or float32 residue: the sites, nothing else
    many = zeros.copy()
    many[::10, 40:50] = 1.0
    many[:, 70:72] = 0.05  # faint relevance on every row
    rng = np.random.default_rng(0)
    many += rng.normal(0, 1e-9, many.shape) * (rng.random(many.shape) < 0.5)
    kept, info = N.filter_seqlets(many, call_seqlets(many), fdr=FDR)
    assert np.isfinite(info["threshold_pos"]) and 0 < info["scale_pos"] < np.inf
    assert set(kept["example_idx"]) == {0, 10}
    assert (kept["start"] < 50).all() and (kept["end"] > 40).all()
    null = N.fit_null(np.zeros(50))
    assert null.share_pos == 0 and null.scale_pos == np.inf
    assert N.bh_threshold(np.zeros(50), null) == np.inf


def test_deterministic_blockwise_and_fdr_one_is_off():
    s = _null_draws(2, True)
    s[::7, 30:40] += 4.0
    seqlets = call_seqlets(s)
    a, ia = N.filter_seqlets(s, seqlets, fdr=FDR)
    four = np.zeros((len(s), 4, s.shape[1]))
    four[:, 2] = s  # one channel holds the score: projecting gives s exactly
    b, ib = N.filter_seqlets(ProjectedRows(four, 13), seqlets, fdr=FDR)
    assert a.equals(b) and ia == ib
    # a sampled fit (every k-th window) gives nearly the same threshold
    sub = N.fit_null(N.sample(s, cap=5000))
    assert sub.scale_pos == pytest.approx(ia["scale_pos"], rel=0.1)
    off, info = N.filter_seqlets(s, seqlets, fdr=1)
    assert len(off) == len(seqlets) and info["threshold_pos"] == -np.inf
    with pytest.raises(ValueError):
        N.filter_seqlets(s, seqlets, fdr=0)


def test_window_sums():
    s = np.arange(12.0).reshape(2, 6)
    w = N.window_sums(s, 3)
    assert w.shape == (2, 4) and w[0, 0] == 3 and w[1, 3] == 9 + 10 + 11
    assert N.window_sums(s, 10).shape == (2, 1)
