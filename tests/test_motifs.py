"""Learned motifs from planted sites: anchored aggregation, MEME round trip, TOMTOM matches."""

import numpy as np
import pandas as pd
import pytest
from test_calls import build_setup, run_call_motifs

from lrp.motifs import learned as Mo
from lrp.steps.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("motifs")
    s = build_setup(root)
    rel = str(s["relevance"]["lrp"])
    calls = root / "calls.tsv"
    run_call_motifs(s, rel, str(root / "calls.bed"), str(calls), "--threshold", "0.001")
    out = {k: root / f"motifs.{k}" for k in ("meme", "tsv", "npz")}
    out["cwm"] = root / "motifs_cwm.meme"
    assert (
        main(
            [
                "motifs",
                "--relevance",
                rel,
                "--calls",
                str(calls),
                "--motif-db",
                str(s["db"]),
                "--out-meme",
                str(out["meme"]),
                "--out-tsv",
                str(out["tsv"]),
                "--out-npz",
                str(out["npz"]),
                "--out-cwm-meme",
                str(out["cwm"]),
                "--min-seqlets",
                "3",
            ]
        )
        == 0
    )
    return s, out


def test_one_motif_per_planted_tf(run):
    _s, out = run
    table = pd.read_csv(out["tsv"], sep="\t")
    assert sorted(table["anchor_name"]) == ["CTCF", "REST", "TP53"]
    assert (table["match_name"] == table["anchor_name"]).all()
    assert (table["q"] < 0.05).all()
    from lrp.motifs.database import read_meme

    motifs = read_meme(out["meme"])
    assert len(motifs) == 3
    for pfm in motifs.values():
        assert np.allclose(pfm.sum(0), 1, atol=1e-4)


def test_cwm_is_relevance_on_the_consensus(run):
    s, out = run
    from lrp.motifs.database import read_meme as db_read

    db = db_read(s["db"])
    for m in Mo.read_npz(out["npz"]):
        tf = m["name"].split("_", 1)[1]
        cons = "".join("ACGT"[i] for i in db[tf].argmax(0))
        got = "".join("ACGT"[i] for i in m["cwm"].argmax(0))
        assert cons in got  # trimmed CWM covers the planted consensus, on the motif's strand
        assert m["cwm"].max() > 0.8  # relevance ~1 per site base (noise averages out)
        assert m["pfm"].shape == m["cwm"].shape == m["hcwm"].shape
    assert "not probabilities" in out["cwm"].read_text()


def test_best_site_both_strands():
    pfm = np.eye(4)[:, [0, 0, 2, 3]] * 0.97 + 0.0075  # AAGT
    seq = "CCCCACTTCCCC"  # ACTT = reverse complement of AAGT at 4
    ohe = np.eye(4)[:, ["ACGT".index(b) for b in seq]]
    assert Mo.best_site(ohe, pfm, 3, 9) == (4, "-")
    seq2 = "CCAAGTCCCCCC"
    ohe2 = np.eye(4)[:, ["ACGT".index(b) for b in seq2]]
    assert Mo.best_site(ohe2, pfm, 0, 6) == (2, "+")


def test_trim_bounds():
    cwm = np.zeros((4, 20))
    cwm[1, 8:12] = 1
    assert Mo.trim_bounds(cwm, 0.3, pad=2) == (6, 14)
