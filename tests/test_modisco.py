"""De novo motifs with modisco-lite from every method's relevance, sparse LRP relevance included (issue 12).

A small demo CNN (global max pool, as in ``plrp demo``) is trained here on simulated windows with two
planted motifs. Its LRP and PLRP relevance is exactly zero on most positions (the global max pool
hands each channel's maximum only to the head), the case that crashed modisco-lite's pattern merging
(``ValueError: Input contains NaN``).
"""

import logging

import numpy as np
import pytest
import torch

from lrp.demo.model import build_model
from lrp.engine.explain import explain
from lrp.engine.methods import method_names
from lrp.motifs import learned as Mo

MOTIFS = {"A": "GGGGCGGGGC", "B": "TGACTCATCA"}
LENGTH, N = 400, 300
LIMITS = {
    "max_seqlets": 300,
    "n_leiden_runs": 1,
    "window": 15,
    "flank": 5,
    "min_seqlets": 10,
    "min_metacluster": 20,
}


def _rc(s):
    return s[::-1].translate(str.maketrans("ACGT", "TGCA"))


def _windows(seed=0):
    """(N, 4, L) one-hot windows; half hold one or two planted motifs (either strand); labels (N,)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (N, LENGTH))
    y = np.zeros(N, np.float32)
    for i in range(N):
        if rng.random() < 0.5:
            continue
        y[i] = 1
        for k, name in enumerate(rng.permutation(list(MOTIFS))[: int(rng.integers(1, 3))]):
            site = MOTIFS[name] if rng.random() < 0.5 else _rc(MOTIFS[name])
            s = int(rng.integers(5, 180)) + 200 * k
            codes[i, s : s + len(site)] = ["ACGT".index(b) for b in site]
    return np.eye(4, dtype=np.float32)[codes].transpose(0, 2, 1).copy(), y


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = _windows()
    model = build_model(n_tasks=1, length=LENGTH, filters=8, kernel_size=11, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(6):
        model.train()
        for b in torch.randperm(N).split(50):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xt[b])[:, 0], yt[b])
            loss.backward()
            opt.step()
    return model.eval(), x


def _has_planted(motifs):
    """Whether some pattern's consensus holds a planted motif's core (either strand)."""
    cons = ["".join("ACGT"[i] for i in m["pfm"].argmax(0)) for m in motifs]
    cores = [s[2:8] for s in MOTIFS.values()]
    return any(c in k or _rc(c) in k for c in cores for k in cons)


@pytest.mark.parametrize("method", method_names())
def test_modisco_finds_motifs_in_every_methods_relevance(trained, method, caplog):
    model, x = trained
    params = {"n_shuffles": 3, "seed": 0} if method == "deeplift-shap" else {}
    out = explain(model, torch.as_tensor(x), method=method, target={"index": 0}, **params)
    hyp = out.hypothetical.numpy()
    if method != "deeplift-shap":  # the sparse case: most positions hold exactly zero
        assert (np.abs(hyp).sum(1) == 0).mean() > 0.3, (np.abs(hyp).sum(1) == 0).mean()
    with caplog.at_level(logging.INFO, logger="plrp"):
        motifs = Mo.modisco_motifs({"ohe": x, "hypothetical": hyp}, **LIMITS)
    assert motifs, caplog.text
    assert _has_planted(motifs), [m["pfm"].argmax(0) for m in motifs]
    for m in motifs:
        assert np.isfinite(m["cwm"]).all() and np.isfinite(m["pfm"]).all()
        assert m["cwm"].shape == m["pfm"].shape == m["hcwm"].shape


def test_modisco_says_why_it_found_nothing(caplog):
    x, _ = _windows()
    hyp = np.zeros_like(x)
    with caplog.at_level(logging.WARNING, logger="plrp"):
        motifs = Mo.modisco_motifs({"ohe": x, "hypothetical": hyp}, **LIMITS)
    assert motifs == []
    assert "no relevance" in caplog.text


def test_floor_defines_the_similarity_of_all_zero_snippets():
    """The crash's cause: modisco-lite's continuous Jaccard of two all-zero snippets is 0 / 0, and the
    AUROC of its pattern merging raises on the NaN. The floor makes every similarity finite, is
    deterministic, leaves non-zero columns alone and stays below FLOOR x max |relevance|."""
    from modiscolite import affinitymat

    hyp = np.zeros((3, 30, 4), np.float32)
    hyp[0, 5:9] = [0.5, -1.0, 0.2, 0.0]

    def jaccard(h):
        x = h.reshape(len(h), -1)[:, :, None]
        return affinitymat.jaccard(x, x)[:, :, 0]

    assert np.isnan(jaccard(hyp)).any()
    floored = hyp.copy()
    assert Mo.relevance_floor(floored) == pytest.approx(1 - 4 / 90)
    assert np.isfinite(jaccard(floored)).all()
    assert np.array_equal(floored[0, 5:9], hyp[0, 5:9])
    assert np.abs(floored - hyp).max() <= Mo.FLOOR * 1.0
    again = hyp.copy()
    Mo.relevance_floor(again)
    assert np.array_equal(again, floored)
    assert not np.array_equal(floored[1], floored[2])  # floor-only snippets differ
