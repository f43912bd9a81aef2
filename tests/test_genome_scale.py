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
