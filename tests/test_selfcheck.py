"""The self-check flags an explanation that is worse than random and passes a good one, on a small CNN
trained here (a few seconds) to find a planted motif."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrp import explain
from lrp.engine.scoring import target_function
from lrp.evaluation.selfcheck import advice, selfcheck

MOTIF = np.array([2, 0, 3, 0, 0, 2])  # GATAAG
L = 60


def _data(n, seed):
    """(n, 4, L) one-hot, labels (n,) and the site mask (n, L): half the windows hold the motif."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, L))
    y = rng.random(n) < 0.5
    mask = np.zeros((n, L), bool)
    for i in np.flatnonzero(y):
        s = int(rng.integers(0, L - len(MOTIF)))
        codes[i, s : s + len(MOTIF)] = MOTIF
        mask[i, s : s + len(MOTIF)] = True
    x = np.eye(4, dtype=np.float32)[codes].transpose(0, 2, 1).copy()
    return x, y.astype(np.float32), mask


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(4, 8, 6),
        nn.ReLU(),
        nn.MaxPool1d(L - 5),
        nn.Flatten(),
        nn.Linear(8, 1),
    )
    x, y, _ = _data(1200, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(xt)[:, 0], yt).backward()
        opt.step()
    return model.eval()


def test_flags_relevance_from_a_shuffled_model_and_passes_the_trained_one(trained):
    import copy

    x, _, mask = _data(120, 5)
    keep = mask.any(1)  # windows with a site: a good explanation points at it
    x, mask = x[keep], mask[keep]
    f = target_function(trained, None)
    good = explain(trained, x, method="gradient-x-input").relevance.sum(1).numpy()
    ok = selfcheck(f, x, good, mask, method="gradient-x-input", seed=0)
    assert not ok["flagged"] and ok["message"] == ""
    assert ok["deletion"]["verdict"] == "better" and ok["sites"]["verdict"] == "better"

    g = torch.Generator().manual_seed(3)
    broken = copy.deepcopy(trained)
    with torch.no_grad():
        conv = broken[0].weight
        conv.copy_(conv.flatten()[torch.randperm(conv.numel(), generator=g)].reshape(conv.shape))
    bad = explain(broken, x, method="lrp").relevance.sum(1).numpy()
    flagged = selfcheck(f, x, bad, mask, method="lrp", rules=None, seed=0)
    assert flagged["flagged"], flagged
    assert "than random" in flagged["message"] and "Fix:" in flagged["message"]
    assert "z-plus" in flagged["message"]


def test_advice_names_cause_and_fix_for_every_family():
    assert "lower p_pos" in advice(["deletion"], "plrp-lambda", {"conv": "epsilon"})
    # a method named by the user is judged by its kind: plrp-m-0.25 is pruned, not mis-targeted
    named = advice(["deletion"], "plrp-m-0.25", None, {"reduction": "profile"}, kind="plrp-m")
    assert named.startswith("plrp-m-0.25 is not better") and "lower p_pos" in named
    assert "target" in advice(["deletion"], "plrp-m-0.25", None, {"reduction": "profile"})
    profile = advice(["sites"], "lrp", {"conv": "zplus"}, {"reduction": "profile"})
    assert "profile head" in profile and "conv: epsilon" in profile
    # the default composite on a profile target already has epsilon there: the advice is rules: auto
    assert "rules: auto" in advice(["sites"], "lrp", None, {"reduction": "profile"})
    assert "conv: epsilon" in advice(["sites"], "lrp", None, {"reduction": "none"})
    assert "target" in advice(["deletion"], "deeplift-shap")


def _write_run(root, name, x, relevance, mask):
    """A method's relevance store, its regions (windows laid end to end on chr1) and the known sites."""
    n, _, length = x.shape
    d = root / name
    d.mkdir()
    np.savez(
        d / "relevance.npz",
        relevance=relevance.astype(np.float32),
        hypothetical=relevance.astype(np.float32),
        ohe=x.astype(np.int8),
        index=np.arange(n),
        target=np.zeros(n, np.float32),
        layer_gini=np.zeros((n, 0), np.float32),
        layer_names=np.array([], dtype=str),
    )
    rows = [("chr1", i * length, (i + 1) * length, f"w{i}", 0, ".") for i in range(n)]
    (root / "regions.bed").write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    sites = []
    for i, m in enumerate(mask):
        pos = np.flatnonzero(m)
        if pos.size:
            sites.append(f"chr1\t{i * length + pos[0]}\t{i * length + pos[-1] + 1}\tGATA\t0\t+\n")
    (root / "sites.bed").write_text("".join(sites))
    return d


def test_plrp_evaluate_flags_a_shuffled_model_and_passes_the_trained_one(trained, tmp_path, caplog):
    """Through ``plrp evaluate`` and ``--compare``: the self-check fields in metrics and comparison, and a
    WARNING line naming cause and fix for the broken explanation only."""
    import copy
    import json
    import logging

    import pandas as pd

    from lrp.steps.cli import main

    x, _, mask = _data(160, 7)
    batch = torch.export.Dim("batch")
    ep = torch.export.export(trained, (torch.zeros(2, 4, L),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, str(tmp_path / "model.pt2"))
    broken = copy.deepcopy(trained)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        conv = broken[0].weight
        conv.copy_(conv.flatten()[torch.randperm(conv.numel(), generator=g)].reshape(conv.shape))
    runs = {
        "gradient-x-input": explain(trained, x, method="gradient-x-input").relevance.numpy(),
        "lrp": explain(broken, x, method="lrp").relevance.numpy(),
    }
    metrics = []
    for name, relevance in runs.items():
        d = _write_run(tmp_path, name, x, relevance, mask)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="plrp"):
            argv = ["evaluate", "--relevance", str(d / "relevance.npz")]
            argv += ["--regions", str(tmp_path / "regions.bed")]
            argv += ["--known-sites", str(tmp_path / "sites.bed"), "--method", name]
            argv += ["--model", str(tmp_path / "model.pt2"), "--target", '{"index": 0}']
            argv += ["--faith-steps", "2", "--faith-max-windows", "8"]
            argv += ["--out-json", str(d / "metrics.json"), "--out-tsv", str(d / "metrics.tsv")]
            assert main(argv) == 0
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        doc = json.loads((d / "metrics.json").read_text())
        s = doc["scalars"]
        if name == "lrp":
            assert s["selfcheck_flag"] is True and warned, (s, warned)
            assert "WARNING self-check" in warned[0] and "Fix:" in warned[0]
            assert "z-plus" in s["selfcheck_message"]
        else:
            assert s["selfcheck_flag"] is False and not warned, (s, warned)
            assert s["selfcheck_message"] == ""
            assert s["selfcheck_deletion_gain"] > 0 and s["selfcheck_auprc_ratio"] > 1.5
        assert doc["selfcheck"]["deletion"]["n_windows"] == 128
        metrics.append(str(d / "metrics.json"))
    out = tmp_path / "compare"
    argv = ["evaluate", "--compare", *metrics, "--out-json", str(out / "comparison.json")]
    assert main([*argv, "--out-tsv", str(out / "comparison.tsv")]) == 0
    table = pd.read_csv(out / "comparison.tsv", sep="\t").set_index("method")
    assert table["selfcheck_flag"].to_dict() == {"gradient-x-input": False, "lrp": True}
    assert np.isfinite(table["selfcheck_auprc_ratio"]).all()
    rows = json.loads((out / "comparison.json").read_text())["table"]
    assert {r["method"]: r["selfcheck_flag"] for r in rows} == {
        "gradient-x-input": False,
        "lrp": True,
    }
