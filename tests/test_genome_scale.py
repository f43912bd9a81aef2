"""Genome-wide mode end to end on real files: tile -> attribute (CLI, per shard) -> gather -> bigwig.

A small genome with N gaps on several chromosomes (leading, inner and trailing runs, a run too short to split
the tiling, an all-N chromosome). The bigWig read back with pyBigWig covers every base outside the N gaps
exactly once and never a gap base, and the stitched relevance equals the relevance of one window explained
alone (``lrp.engine.explain.explain``) on the bases that window keeps (its centre crop).
"""

import json

import numpy as np
import pyBigWig
import pytest
import torch
from test_genome import write_fasta

from lrp.demo.model import build_model
from lrp.engine.explain import explain
from lrp.engine.model_io import load_model
from lrp.genomics.genome import chrom_sizes, fetch_one_hot, n_runs
from lrp.genomics.regions import read_regions
from lrp.genomics.tracks import centre_crop
from lrp.steps.cli import main

L, STEP, SHARD, MIN_GAP = 100, 50, 16, 25
KWARGS = {"n_tasks": 3, "length": L, "filters": 8, "kernel_size": 7, "pool_size": 4, "pool": "mean"}
TARGET = {"index": 0}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The genome-wide steps through the CLI, as the workflow runs them; returns the paths and records."""
    tmp = tmp_path_factory.mktemp("genome_scale")
    rng = np.random.default_rng(11)

    def dna(n):
        return "".join(rng.choice(list("ACGT"), n))

    records = {
        "chr1": "N" * 30 + dna(520) + "NNN" + dna(250) + "N" * 80 + dna(333),
        "chr2": dna(700) + "N" * 60 + dna(410) + "N" * 45,
        "chrN": "N" * 300,
        "chr4": dna(257),
    }
    fasta = write_fasta(tmp / "genome.fa", records, width=60)
    assert (
        main(
            [
                "regions",
                "--fasta",
                fasta,
                "--length",
                str(L),
                "--tile",
                "--step",
                str(STEP),
                "--min-gap",
                str(MIN_GAP),
                "--out",
                str(tmp / "regions.bed"),
                "--gaps-out",
                str(tmp / "gaps.bed"),
                "--shard-size",
                str(SHARD),
                "--n-shards-out",
                str(tmp / "n_shards.txt"),
            ]
        )
        == 0
    )
    n_shards = int((tmp / "n_shards.txt").read_text())
    assert n_shards >= 3  # several shards, so gather really stitches shards together
    torch.save(build_model(**KWARGS, seed=0).state_dict(), tmp / "model.pt")
    shards = []
    for k in range(n_shards):
        shards.append(str(tmp / f"shard{k}.npz"))
        assert (
            main(
                [
                    "attribute",
                    "--fasta",
                    fasta,
                    "--regions",
                    str(tmp / "regions.bed"),
                    "--shard",
                    str(k),
                    "--shard-size",
                    str(SHARD),
                    "--model",
                    str(tmp / "model.pt"),
                    "--builder",
                    "lrp.demo.model:build_model",
                    "--builder-kwargs",
                    json.dumps(KWARGS),
                    "--length",
                    str(L),
                    "--target",
                    json.dumps(TARGET),
                    "--method",
                    "plrp-lambda",
                    "--batch-size",
                    "8",
                    "--device",
                    "cpu",
                    "--threads",
                    "1",
                    "--out",
                    shards[-1],
                ]
            )
            == 0
        )
    assert (
        main(
            [
                "gather",
                "--shards",
                *shards[::-1],
                "--regions",
                str(tmp / "regions.bed"),
                "--out-dir",
                str(tmp),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "bigwig",
                "--relevance",
                str(tmp / "relevance.npz"),
                "--regions",
                str(tmp / "regions.bed"),
                "--fasta",
                fasta,
                "--out",
                str(tmp / "track.bw"),
            ]
        )
        == 0
    )
    return {"dir": tmp, "fasta": fasta, "records": records}


def n_gap_mask(records, chrom, min_gap=MIN_GAP):
    """True on bases in N runs of at least ``min_gap`` (the gaps the tiling skips)."""
    seq = np.frombuffer(records[chrom].encode(), np.uint8) == ord("N")
    mask = np.zeros(seq.size, bool)
    edges = np.flatnonzero(np.diff(seq.astype(np.int8), prepend=0, append=0))
    for s, e in zip(edges[::2], edges[1::2]):
        if e - s >= min_gap:
            mask[s:e] = True
    return mask


def bigwig_contents(path):
    bw = pyBigWig.open(str(path))
    try:
        chroms = bw.chroms()
        intervals = {c: bw.intervals(c) or () for c in chroms}
        values = {
            c: np.asarray(bw.values(c, 0, n, numpy=True), np.float64) for c, n in chroms.items()
        }
    finally:
        bw.close()
    return chroms, intervals, values


def test_gaps_are_stated_and_every_other_base_is_covered_once(run):
    records, tmp = run["records"], run["dir"]
    sizes = chrom_sizes(run["fasta"])
    chroms, intervals, values = bigwig_contents(tmp / "track.bw")
    assert chroms == sizes and list(chroms) == list(sizes)  # every chromosome, FASTA order
    gaps = read_regions(tmp / "gaps.bed")
    assert set(gaps["name"]) == {"N"}  # every skipped base is an N of a long run
    for chrom, size in sizes.items():
        in_gap = n_gap_mask(records, chrom)
        stated = np.zeros(size, bool)
        for s, e in gaps.loc[gaps["chrom"] == chrom, ["start", "end"]].to_numpy():
            stated[s:e] = True
        assert np.array_equal(stated, in_gap), chrom  # gaps.bed states exactly the N gaps
        rs, re_ = n_runs(run["fasta"], chrom)
        assert int((re_ - rs).sum()) >= int(in_gap.sum())
        written = np.zeros(size, np.int64)
        for s, e, _ in intervals[chrom]:
            written[s:e] += 1
        assert np.array_equal(written, (~in_gap).astype(np.int64)), chrom  # once; gaps never
        assert np.all(np.isnan(values[chrom][in_gap]))
        assert np.all(np.isfinite(values[chrom][~in_gap]))
    # The short NNN run inside chr1 is covered, and N bases carry zero relevance.
    short = np.flatnonzero(np.frombuffer(records["chr1"].encode(), np.uint8) == ord("N"))
    short = short[~n_gap_mask(records, "chr1")[short]]
    assert short.size == 3 and np.all(values["chr1"][short] == 0)
    assert "chrN" not in set(read_regions(tmp / "regions.bed")["chrom"])


def test_stitched_track_equals_single_window_explanations(run):
    tmp = run["dir"]
    regions = read_regions(tmp / "regions.bed")
    keep_start, keep_end = centre_crop(regions)
    _, _, values = bigwig_contents(tmp / "track.bw")
    model = load_model(tmp / "model.pt", "lrp.demo.model:build_model", KWARGS)
    # First and last window of every chromosome (their crops reach the segment ends next to N gaps), the
    # windows on both sides of shard boundaries, and one inside a segment.
    picks = set()
    for rows in regions.groupby("chrom").groups.values():
        picks |= {int(rows.min()), int(rows.max())}
    picks |= {SHARD - 1, SHARD, 2 * SHARD - 1, 2 * SHARD, 5}
    picks = sorted(p for p in picks if p < len(regions))
    compared = 0
    for i in picks:
        row = regions.iloc[[i]]
        x = fetch_one_hot(run["fasta"], row, L)
        alone = explain(model, x, "plrp-lambda", TARGET).relevance.numpy()[0].sum(0)
        start = int(row["start"].iloc[0])
        a, b = int(keep_start[i]), int(keep_end[i])
        assert b > a
        got = values[row["chrom"].iloc[0]][a:b]
        want = alone[a - start : b - start]
        np.testing.assert_allclose(
            got, want, rtol=1e-4, atol=1e-6 * np.abs(alone).max(), err_msg=f"window {i}"
        )
        compared += int(np.count_nonzero(want))
    assert compared > 0.5 * L * len(picks) / 2  # real, mostly non-zero relevance was compared
    # Where one window alone covers bases (the left end of chr1's first segment), the track is that
    # window's relevance.
    first = int(regions.index[regions["chrom"] == "chr1"][0])
    s = int(regions["start"][first])
    x = fetch_one_hot(run["fasta"], regions.iloc[[first]], L)
    alone = explain(model, x, "plrp-lambda", TARGET).relevance.numpy()[0].sum(0)
    np.testing.assert_allclose(
        values["chr1"][s : s + STEP], alone[:STEP], rtol=1e-4, atol=1e-6 * np.abs(alone).max()
    )


# ------------------------------------------------------------------ genome-wide mode through real Snakemake
@pytest.fixture(scope="module")
def genome_run(tmp_path_factory):
    """The tiny demo in genome-wide mode (config ``output``) through Snakemake, up to the per-method
    tracks, the stores and the evaluation; returns the results folder of the pair."""
    from conftest import snakemake, tiny

    work = tmp_path_factory.mktemp("genome_mode")
    config = tiny()
    config["output"] = {
        "mode": "genome",
        "hypothetical_track": True,
        "select": {"top_fraction": 0.25},
    }
    targets = [
        f"results/demo/demo/{m}/{f}"
        for m in config["methods"]
        for f in ("relevance.bw", "relevance.npz", "metrics.json")
    ]
    proc = snakemake(work, "--cores", "2", *targets, config=config, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "results/demo/demo", config


def test_genome_mode_tracks_stores_and_no_shards(genome_run):
    from lrp.genomics.store import open_store

    pair, config = genome_run
    regions = read_regions(pair / "regions.bed", coords_only=True)
    keep_start, keep_end = centre_crop(regions)
    with np.load(pair / "selection.npz") as z:
        rows, predicted = z["rows"], z["predicted"]
    k = int(np.ceil(0.25 * len(regions)))
    assert np.array_equal(
        rows, np.sort(np.argsort(-predicted.astype(np.float64), kind="stable")[:k])
    )
    for method in config["methods"]:
        d = pair / method
        assert not list((d / "shards").glob("*.npz")), "a shard remains after the run"
        assert not (d / "relevance.npy").exists()  # relevance is hypothetical * ohe, stored once
        store = open_store(d / "relevance.npz")
        assert np.array_equal(store.index, rows) and len(store.hypothetical) == len(rows)
        assert np.load(d / "hypothetical.npy", mmap_mode="r").shape == (len(rows), 4, 500)
        rel, hyp = store.relevance[:], store.hypothetical[:]
        with pyBigWig.open(str(d / "relevance.bw")) as bw:
            hyp_bw = {b: pyBigWig.open(str(d / f"hypothetical_{b}.bw")) for b in "ACGT"}
            for i, r in enumerate(rows.tolist()):  # nearest-centre rule on every stored window
                chrom, start = regions["chrom"].iloc[r], int(regions["start"].iloc[r])
                ks, ke = int(keep_start[r]), int(keep_end[r])
                got = np.asarray(bw.values(chrom, ks, ke, numpy=True))
                np.testing.assert_array_equal(got, rel[i].sum(0)[ks - start : ke - start])
                for c, b in enumerate("ACGT"):
                    got = np.asarray(hyp_bw[b].values(chrom, ks, ke, numpy=True))
                    np.testing.assert_array_equal(got, hyp[i, c, ks - start : ke - start])
            covered = sum(
                np.isfinite(np.asarray(bw.values(c, 0, n, numpy=True))).sum()
                for c, n in bw.chroms().items()
                if c in set(regions["chrom"])
            )
            for h in hyp_bw.values():
                h.close()
        assert covered == int((keep_end - keep_start).sum())  # every tiled base once
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics["scalars"]["n_windows"] == len(rows)


# ------------------------------------------------------------- faithfulness: the random part computed once
def _faithfulness_per_method(f, x, scores, n_steps, max_fraction, background, n_random, seed):
    """The per-method computation as evaluate ran it before the shared baseline (the oracle)."""
    from lrp.evaluation.metrics import _background, perturbation_curve

    rng = np.random.default_rng(seed)
    N, _, L = x.shape
    fractions = np.linspace(0, max_fraction, n_steps + 1)
    bg = _background(x, background, rng)
    curve = perturbation_curve(f, x, np.argsort(-scores, axis=1, kind="stable"), fractions, bg)
    drop = curve[:, :1] - curve
    rnd = []
    for _ in range(n_random):
        c = perturbation_curve(f, x, np.argsort(rng.random((N, L)), axis=1), fractions, bg)
        rnd.append(c[:, :1] - c)
    rnd = np.mean(rnd, axis=0)
    return drop[:, 1:].mean(), rnd[:, 1:].mean(), drop.mean(0), rnd.mean(0)


@pytest.mark.parametrize("background", ["uniform", "shuffle"])
def test_shared_random_curves_give_the_per_method_numbers(background, tmp_path):
    from lrp.evaluation import metrics as M
    from lrp.evaluation.evaluate import read_faith_baseline, write_faith_baseline

    rng = np.random.default_rng(3)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (12, 60))].transpose(0, 2, 1)
    w = rng.normal(size=(4, 60)).astype(np.float32)
    calls = []

    def f(xb):
        calls.append(len(xb))
        return np.tanh((xb * w).sum((1, 2)) / 4)

    kw = {"n_steps": 6, "max_fraction": 0.3, "background": background, "n_random": 3, "seed": 5}
    base = M.faithfulness_baseline(f, x, **kw)
    write_faith_baseline(tmp_path / "b.npz", np.arange(12), base)
    base = read_faith_baseline(tmp_path / "b.npz")
    for method in range(3):  # three methods, one baseline
        scores = rng.normal(size=(12, 60))
        want = _faithfulness_per_method(f, x, scores, **kw)
        calls.clear()
        shared = M.faithfulness_from_baseline(f, x, scores, base)
        assert len(calls) == kw["n_steps"]  # only the relevance-ordered curve runs per method
        whole = M.faithfulness(f, x, scores, **kw)
        for got in (shared, whole):
            assert got["aopc_relevance"] == want[0] and got["aopc_random"] == want[1]
            assert got["curve_relevance"] == want[2].tolist()
            assert got["curve_random"] == want[3].tolist()
