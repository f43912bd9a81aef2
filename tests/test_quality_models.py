"""A BPNet-style model with profile and counts heads, trained here on simulated windows with planted
motifs (the benchmark's ``bpnet`` setup, smaller). The default composite finds the sites
on the profile head (z-plus on hidden convolutions, the default for single logits, does not); the
per-layer p of
:func:`lrp.engine.auto.knee_p` is reproducible and in ``[0, 1)``.

``rules: auto`` (:func:`lrp.engine.auto.choose_rules`) is tested for reproducibility in test_auto.py, not here: on this briefly trained
model it chose z-plus -> gamma 0.25 by deletion gain, with relevance mass 0.05 on sites covering 0.11 of the
windows, so the deletion test alone does not yet pick a composite that finds the sites."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("bpnetlite")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import quality

from lrp import explain
from lrp.engine import auto
from lrp.evaluation import metrics as M

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bpnet():
    torch.set_num_threads(2)
    return quality.setup_bpnet(0, n_train=1200)


def _quality(model, x, target, mask, **kwargs):
    scores = explain(model, torch.as_tensor(x), target=target, **kwargs).relevance.sum(1).numpy()
    return M.summarise(M.rma(scores, mask)), M.auprc(scores, mask), float(mask.mean())


def test_default_composite_on_the_profile_head(bpnet):
    """The default composite is epsilon on hidden convolutions for the signed profile target: plrp-lambda
    relevance lands on the planted sites (AUPRC above random), where z-plus, the default for a single
    logit, puts it off them (below random; docs/plrp-method.md, "Diagnosis")."""
    model, x, heads = bpnet
    target, mask = heads["profile"]
    _, default, base = _quality(model, x, target, mask, method="plrp-lambda")
    _, zplus, _ = _quality(model, x, target, mask, method="plrp-lambda", rules={"conv": "zplus"})
    assert default > 1.25 * base, (default, base)
    assert zplus < base < default, (zplus, base, default)


def test_knee_p_is_reproducible_and_a_proportion(bpnet):
    model, x, heads = bpnet
    target, _ = heads["profile"]
    a = auto.knee_p(model, x, target, n=16, seed=4)
    assert a == auto.knee_p(model, x, target, n=16, seed=4)
    assert a and all(0 <= p < 1 for p in a.values())
    assert "iconv" not in a  # the layer reading the sequence is never pruned
    assert np.isfinite(list(a.values())).all()
