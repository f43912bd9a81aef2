"""Evaluate end to end on a tiny synthetic setup: two methods, calls, a real exported model, comparison."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_calls import build_setup, run_call_motifs

from lrp.evaluation import evaluate as E
from lrp.steps.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    s = build_setup(root, noise=0.3)
    # A linear model that reads the bases where relevance was planted (exported like a real model).
    z = np.load(s["relevance"]["plrp_p0.5"])
    L = z["ohe"].shape[2]
    weight = np.zeros((4, L), np.float32)
    weight[:] = (z["relevance"].mean(0) > 0.05) * 1.0
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * L, 1, bias=False))
    model[1].weight.data = torch.as_tensor(weight.reshape(1, -1))
    batch = torch.export.Dim("batch")
    ep = torch.export.export(model.eval(), (torch.zeros(2, 4, L),), dynamic_shapes=({0: batch},))
    model_path = root / "model.pt2"
    torch.export.save(ep, str(model_path))
    out = {}
    for method in ("lrp", "plrp_p0.5"):
        d = root / method
        calls = d / "calls.tsv"
        run_call_motifs(
            s, str(s["relevance"][method]), str(d / "calls.bed"), str(calls), "--threshold", "0.001"
        )
        assert (
            main(
                [
                    "evaluate",
                    "--relevance",
                    str(s["relevance"][method]),
                    "--regions",
                    str(s["regions"]),
                    "--known-sites",
                    str(s["known"]),
                    "--calls",
                    str(calls),
                    "--method",
                    method,
                    "--model",
                    str(model_path),
                    "--target",
                    '{"index": 0}',
                    "--faith-steps",
                    "5",
                    "--faith-max-windows",
                    "20",
                    "--out-json",
                    str(d / "metrics.json"),
                    "--out-tsv",
                    str(d / "metrics.tsv"),
                ]
            )
            == 0
        )
        out[method] = d
    comp = root / "compare"
    assert (
        main(
            [
                "evaluate",
                "--compare",
                str(out["lrp"] / "metrics.json"),
                str(out["plrp_p0.5"] / "metrics.json"),
                "--out-json",
                str(comp / "comparison.json"),
                "--out-tsv",
                str(comp / "comparison.tsv"),
                "--plots-dir",
                str(comp / "plots"),
            ]
        )
        == 0
    )
    out["compare"] = comp
    return s, out


def test_method_metrics(run):
    _s, out = run
    lrp = json.loads((out["lrp"] / "metrics.json").read_text())
    plrp = json.loads((out["plrp_p0.5"] / "metrics.json").read_text())
    assert lrp["p_pos"] == 0.0 and plrp["p_pos"] == 0.5 and plrp["family"] == "plrp"
    a, b = lrp["scalars"], plrp["scalars"]
    # The sparse method: sparser, all positive relevance on the sites, perfect ranking.
    assert b["gini"] > a["gini"]
    assert b["rma"] == pytest.approx(1.0) and a["rma"] < 1.0
    assert b["auprc"] == pytest.approx(1.0) and a["auprc"] < b["auprc"]
    assert b["precision"] == pytest.approx(1.0) and b["recall"] == pytest.approx(1.0)
    # the noisy method's fragments of a site join into one call (merge_gap), so its calls stay right here;
    # its ranking (AUPRC) and mass on the sites (RMA) are what the noise costs
    assert a["precision"] <= b["precision"]
    assert set(plrp["per_tf"]) == {"CTCF", "REST", "TP53"}
    assert plrp["layer_gini"]["names"] == ["conv1", "conv2", "fc"]
    assert plrp["layer_gini"]["mean"] == pytest.approx([0.8] * 3)
    # Faithfulness with the real exported model: deleting the planted sites first beats random.
    fa = plrp["faithfulness"]
    assert b["aopc_gain"] > 0 and fa["n_windows"] == 20
    tsv = pd.read_csv(out["lrp"] / "metrics.tsv", sep="\t")
    assert len(tsv) == 1 and tsv["method"][0] == "lrp"


def test_comparison(run):
    _s, out = run
    table = pd.read_csv(out["compare"] / "comparison.tsv", sep="\t")
    assert table["method"].tolist() == ["lrp", "plrp_p0.5"]
    assert table["p"].tolist() == [0.0, 0.5]
    doc = json.loads((out["compare"] / "comparison.json").read_text())
    assert doc["methods"] == ["lrp", "plrp_p0.5"] and "CTCF" in doc["per_tf"]["plrp_p0.5"]
    import matplotlib.image as mpimg

    from lrp.report.comparison import PLOTS

    for stem in PLOTS:
        img = mpimg.imread(out["compare"] / "plots" / f"{stem}.png")
        assert (img[..., :3].min(-1) < 0.5).mean() > 0.002
        assert "<svg" in (out["compare"] / "plots" / f"{stem}.svg").read_text()


def test_family_and_p_from_name():
    assert E.plot_family("plrp-lambda_p0.25") == "plrp-lambda"
    assert E._p_from_name("plrp-lambda_p0.25") == 0.25
    assert E._p_from_name("lrp") is None


def test_missing_inputs_one_line(tmp_path, capsys):
    rc = main(
        ["evaluate", "--out-json", str(tmp_path / "m.json"), "--out-tsv", str(tmp_path / "m.tsv")]
    )
    assert rc == 1
    assert "Fix:" in capsys.readouterr().err


def test_shared_baseline_gives_the_per_method_numbers(run, tmp_path, capsys):
    """``plrp faithfulness-baseline`` (windows from the FASTA) then ``plrp evaluate --faith-baseline``: the
    faithfulness and the self-check are those computed in the method's own job; a baseline of other
    self-check windows is refused, naming the file and the fix."""
    s, out = run
    root = out["lrp"].parent
    base = tmp_path / "faithfulness_baseline.npz"
    model = ["--model", str(root / "model.pt2"), "--target", '{"index": 0}']
    faith = ["--faith-steps", "5", "--faith-max-windows", "20"]
    argv = ["faithfulness-baseline", "--fasta", str(s["fasta"]), "--regions", str(s["regions"])]
    assert main([*argv, *model, *faith, "--out", str(base)]) == 0
    assert E.read_faith_baseline(base)["selfcheck"]["rows"].size == len(s["region_df"])
    for method in ("lrp", "plrp_p0.5"):
        argv = ["evaluate", "--relevance", str(s["relevance"][method]), "--method", method]
        argv += ["--regions", str(s["regions"]), "--known-sites", str(s["known"])]
        argv += ["--calls", str(out[method] / "calls.tsv"), *model, *faith]
        argv += ["--faith-baseline", str(base)]
        outs = ["--out-json", str(tmp_path / "m.json"), "--out-tsv", str(tmp_path / "m.tsv")]
        assert main([*argv, *outs]) == 0
        alone = json.loads((out[method] / "metrics.json").read_text())
        shared = json.loads((tmp_path / "m.json").read_text())
        assert shared["selfcheck"]["deletion"]["n_windows"] == len(s["region_df"])
        assert shared["selfcheck"] == alone["selfcheck"]
        assert shared["faithfulness"] == alone["faithfulness"]
        assert shared["scalars"] == alone["scalars"]
    capsys.readouterr()
    assert main([*argv, "--selfcheck-windows", "10", *outs]) == 1
    err = capsys.readouterr().err
    assert f"{base}: the self-check's" in err and "Fix: rerun plrp faithfulness-baseline" in err
