"""Quality of the explanations on a reduced demo, run for real through the Snakemake workflow (about 70 s on
2 cores): simulate a genome with planted JASPAR motifs, train the demo CNN, explain tiles of the held-out
chromosome with LRP and PLRP-lambda at the default p, call and label motifs, evaluate.

Everything asserted is computed here from the workflow's outputs (relevance arrays, calls, known sites), not
read from a file the workflow wrote about itself:

- PLRP-lambda is sparser (Gini) and puts more positive relevance on the planted sites (RMA) than LRP;
- the planted TFs are recovered by name in PLRP-lambda's motif calls (at least three of them);
- the calls' precision against known_sites.bed is well above what calls of the same lengths placed at random
  in the same windows get (the bound is computed, see ``test_call_precision_beats_random_placement``).
"""

import json
import tempfile

import numpy as np
import pandas as pd
import pytest
from conftest import demo_config, snakemake

from lrp.evaluation import metrics as M
from lrp.genomics.regions import read_bed, read_regions
from lrp.motifs.calls import read_calls

pytestmark = pytest.mark.slow

DEFAULT_P = 0.25  # lrp.engine.explain.DEFAULT_P_POS, with p_neg = p_pos / 2
METHODS = {
    "lrp": {"method": "lrp"},
    "plrp-lambda-0.25": {
        "method": "plrp-lambda",
        "p_pos": DEFAULT_P,
        "p_neg": DEFAULT_P / 2,
    },
}
PLRP = "plrp-lambda-0.25"
#: a planted TF counts as recovered when at least this many calls on its own sites carry its JASPAR name
MIN_CALLS_PER_TF = 2
#: shuffles of the calls for the random-placement precision, and the factor the real calls must beat it by
N_SHUFFLES = 20
FACTOR = 3.0


def reduced_demo():
    """The shipped config.yaml (its training, calls and labelling settings) on a smaller genome (chr4 of
    120 kb: about 240 tiles), with LRP and PLRP-lambda at the default p, without the faithfulness curves.
    """
    config = demo_config()
    config["simulate"]["chrom_lengths"] = [150000, 150000, 150000, 120000]
    config["methods"] = METHODS
    config["evaluation"]["faithfulness"] = False
    config["attribution"]["device"] = "cpu"
    return config


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo_quality")
    targets = [f"results/demo/demo/{m}/{f}" for m in METHODS for f in ("calls.tsv", "metrics.json")]
    res = snakemake(work, "--cores", "2", *targets, config=reduced_demo(), timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    training = json.loads((work / "resources/demo/training.json").read_text())
    # a model worth explaining: its predicted profile follows the simulated assay's expected coverage
    assert training["heldout"]["profile_pearson_expected"] >= 0.8, training["heldout"]
    return work


def _sites(work):
    return read_bed(work / "resources/demo/known_sites.bed", None, what="known sites")


def _regions(work):
    return read_regions(work / "results/demo/demo/regions.bed")


def _positive_calls(work, method):
    calls = read_calls(work / f"results/demo/demo/{method}/calls.tsv")
    return calls[calls["sign"] > 0].reset_index(drop=True)


def _gini_rma(work, method):
    """Mean Gini of |projected relevance| and mean RMA, from the relevance arrays and the known sites."""
    from lrp.genomics.store import open_store

    store = open_store(work / f"results/demo/demo/{method}/relevance.npz")
    scores = np.asarray(store.relevance).sum(1, dtype=np.float64)
    index = store.index
    windows = _regions(work).iloc[index].reset_index(drop=True)
    mask = M.site_mask(windows, _sites(work))
    assert mask.any(1).sum() >= 20, "too few explained windows hold a planted site"
    return float(np.nanmean(M.gini(np.abs(scores)))), float(np.nanmean(M.rma(scores, mask)))


def test_plrp_sparser_and_more_on_sites_than_lrp(demo):
    g_lrp, rma_lrp = _gini_rma(demo, "lrp")
    g_plrp, rma_plrp = _gini_rma(demo, PLRP)
    assert g_plrp > g_lrp, (g_plrp, g_lrp)
    assert rma_plrp > rma_lrp, (rma_plrp, rma_lrp)
    # the evaluation step reports the same figures
    for method, g, r in (("lrp", g_lrp, rma_lrp), (PLRP, g_plrp, rma_plrp)):
        doc = json.loads((demo / f"results/demo/demo/{method}/metrics.json").read_text())
        assert doc["scalars"]["gini"] == pytest.approx(g, abs=1e-6)
        assert doc["scalars"]["rma"] == pytest.approx(r, abs=1e-6)


def _names(call):
    """The TF names a call carries: its label and its significant database matches (none if unknown)."""
    if call.name == "unknown":
        return set()
    return {call.name} | set(filter(None, str(call.matches).split(",")))


def test_planted_tfs_recovered_by_name(demo):
    planted = set(json.loads((demo / "resources/demo/simulation.json").read_text())["tfs"])
    sites = _sites(demo)
    sites = sites[sites["name"].isin(planted)].reset_index(drop=True)
    calls = _positive_calls(demo, PLRP)
    pairs = M._overlap_pairs(calls, sites)
    named = {tf: 0 for tf in planted}
    for i, j in pairs:
        tf = sites["name"].iloc[j]
        named[tf] += tf in _names(calls.iloc[i])
    recovered = {tf for tf, n in named.items() if n >= MIN_CALLS_PER_TF}
    assert len(planted) >= 4
    assert len(recovered) >= 3, named


def _shuffled_precision(calls, sites, regions, work, seed):
    """Precision of the same calls (lengths, labels, matches) placed at random (bedtools shuffle, seeded)
    inside the explained windows they came from."""
    import pybedtools

    used = regions.iloc[sorted(set(calls["region_index"]))][["chrom", "start", "end"]]
    incl = pybedtools.BedTool.from_dataframe(used).sort().merge()
    bed = pd.DataFrame(
        {
            "chrom": calls["chrom"],
            "start": calls["start"],
            "end": calls["end"],
            "i": calls.index,
        }
    )
    shuffled = (
        pybedtools.BedTool.from_dataframe(bed)
        .shuffle(
            g=str(work / "resources/demo/genome.fa.fai"),
            incl=incl.fn,
            seed=seed,
            chrom=True,
        )
        .to_dataframe(names=["chrom", "start", "end", "i"])
        .sort_values("i")
    )
    moved = calls.copy()
    moved[["chrom", "start", "end"]] = shuffled[["chrom", "start", "end"]].to_numpy()
    assert ((moved["end"] - moved["start"]) == (calls["end"] - calls["start"])).all()
    return M.call_accuracy(moved, sites, regions)["overall"]["precision"]


@pytest.mark.parametrize("method", list(METHODS))
def test_call_precision_beats_random_placement(demo, method):
    """The bound: a call is correct when it overlaps a known site whose TF it names (or it is unlabelled), so
    a call placed anywhere is sometimes right by chance, more so in windows the model predicts bound (they
    hold sites). The chance level is measured: the same calls, same lengths and labels, shuffled by bedtools
    (20 seeds) inside the windows they were called in. Real calls must beat the mean chance precision by a
    factor of 3 and every single shuffle: relevance has to put calls on the sites, not merely in the windows.
    """
    import pybedtools

    sites, regions = _sites(demo), _regions(demo)
    calls = _positive_calls(demo, method)
    assert len(calls) >= 30, len(calls)
    real = M.call_accuracy(calls, sites, regions)["overall"]["precision"]
    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(dir=demo) as tmp:
        pybedtools.helpers.set_tempdir(tmp)
        try:
            chance = [
                _shuffled_precision(calls, sites, regions, demo, seed) for seed in range(N_SHUFFLES)
            ]
        finally:
            pybedtools.helpers.cleanup(remove_all=True)
            tempfile.tempdir = previous
    assert real > FACTOR * np.mean(chance), (real, np.mean(chance))
    assert real > max(chance), (real, max(chance))
