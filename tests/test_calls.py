"""Motif calls on a synthetic genome with planted JASPAR consensus sites (real TOMTOM, bedtools, bigBed).

``build_setup`` is shared with the other downstream tests (``from test_calls import build_setup``).
"""

import numpy as np
import pandas as pd
import pytest

from lrp.motifs import calls as C
from lrp.motifs.stats import bh_best_q
from lrp.report.colours import tf_colour

TFS = ("CTCF", "REST", "TP53")
L, STEP = 200, 100


def _consensus(pfm):
    return "".join("ACGT"[i] for i in np.asarray(pfm).argmax(0))


def _ohe(seq):
    idx = np.array(["ACGT".index(b) for b in seq])
    out = np.zeros((4, len(seq)), np.int8)
    out[idx, np.arange(len(seq))] = 1
    return out


def build_setup(root, seed=0, noise=0.05):
    """Write a tiny synthetic project under ``root``; return a dict of paths and truths.

    Two chromosomes of random sequence; consensus sites of CTCF, REST, TP53 planted every 300 bp (the
    known sites); windows of 200 bp every 100 bp (so most sites lie in two windows). Two methods:
    ``plrp_p0.5`` (relevance = ohe * 1 on the sites, a negative 6 bp bump per window, zero elsewhere)
    and ``lrp`` (the same plus Gaussian noise ``noise`` on the present base everywhere).
    """
    from lrp.motifs.database import select_motifs, write_meme

    rng = np.random.default_rng(seed)
    motifs, ids = select_motifs()
    db = root / "db.meme"
    write_meme(db, motifs, ids)
    sizes = {"chr1": 3000, "chr2": 2000}
    seqs = {c: list(rng.choice(list("ACGT"), n)) for c, n in sizes.items()}
    sites = []
    k = 0
    for chrom, n in sizes.items():
        for pos in range(150, n - 150, 300):
            tf = TFS[k % len(TFS)]
            cons = _consensus(motifs[tf])
            seqs[chrom][pos : pos + len(cons)] = list(cons)
            sites.append((chrom, pos, pos + len(cons), tf, 0, "+"))
            k += 1
    fasta = root / "genome.fa"
    fasta.write_text("".join(f">{c}\n{''.join(s)}\n" for c, s in seqs.items()))
    sites_df = pd.DataFrame(sites, columns=["chrom", "start", "end", "name", "score", "strand"])
    known = root / "known_sites.bed"
    sites_df.to_csv(known, sep="\t", header=False, index=False)
    regions = [
        (c, s, s + L, f"{c}:{s}-{s + L}", 0, ".")
        for c, n in sizes.items()
        for s in range(0, n - L + 1, STEP)
    ]
    reg_df = pd.DataFrame(regions, columns=["chrom", "start", "end", "name", "score", "strand"])
    reg_path = root / "regions.bed"
    reg_df.to_csv(reg_path, sep="\t", header=False, index=False)
    ohe = np.stack([_ohe("".join(seqs[c][s:e])) for c, s, e, *_ in regions])
    bump = np.zeros((len(regions), L), np.float32)
    for i, (c, s, e, *_) in enumerate(regions):
        for sc, ss, se, *_ in sites:
            if sc == c and ss >= s and se <= e:
                bump[i, ss - s : se - s] = 1.0
        neg = 20 + (i * 37) % 150
        if not bump[i, neg - 2 : neg + 8].any():
            bump[i, neg : neg + 6] = -0.8
    out = {
        "db": db,
        "fasta": fasta,
        "known": known,
        "regions": reg_path,
        "sites": sites_df,
        "region_df": reg_df,
        "relevance": {},
        "sizes": sizes,
    }
    for method, sd in (("lrp", noise), ("plrp_p0.5", 0.0)):
        g = bump[:, None, :] + rng.normal(0, sd, bump.shape).astype(np.float32)[:, None, :]
        hyp = np.broadcast_to(g, ohe.shape).astype(np.float32)
        rel = (hyp * ohe).astype(np.float32)
        target = rel.sum((1, 2))
        path = root / method / "relevance.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            relevance=rel,
            hypothetical=hyp,
            ohe=ohe,
            index=np.arange(len(regions)),
            target=target.astype(np.float32),
            layer_gini=np.full((len(regions), 3), 0.5 if sd else 0.8, np.float32),
            layer_names=np.array(["conv1", "conv2", "fc"]),
        )
        out["relevance"][method] = path
    return out


def run_call_motifs(setup, relevance, bed, tsv, *extra):
    """Run ``plrp call-motifs`` on a :func:`build_setup` project; assert it succeeds.

    Without ``--fdr`` in ``extra`` the null filter is off (``--fdr 1``): the synthetic relevance has a site
    in nearly every window and exact zeros elsewhere, so there is no background to fit a null to (the null
    is tested in test_null.py; :func:`test_null_filter_in_call_motifs` runs it here)."""
    from lrp.steps.cli import main

    if "--fdr" not in extra:
        extra = (*extra, "--fdr", "1")
    args = ["call-motifs", "--relevance", str(relevance), "--regions", str(setup["regions"])]
    args += ["--motif-db", str(setup["db"]), "--fasta", str(setup["fasta"])]
    args += ["--out-bed", str(bed), "--out-tsv", str(tsv), *extra]
    assert main(args) == 0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return build_setup(tmp_path_factory.mktemp("calls"))


@pytest.fixture(scope="module")
def called(setup, tmp_path_factory):
    from lrp.steps.cli import main

    out = tmp_path_factory.mktemp("out")
    paths = {k: out / f"calls.{k}" for k in ("bed", "tsv", "bb")}
    rc = main(
        [
            "call-motifs",
            "--relevance",
            str(setup["relevance"]["plrp_p0.5"]),
            "--regions",
            str(setup["regions"]),
            "--motif-db",
            str(setup["db"]),
            "--fasta",
            str(setup["fasta"]),
            "--out-bed",
            str(paths["bed"]),
            "--out-tsv",
            str(paths["tsv"]),
            "--out-bigbed",
            str(paths["bb"]),
            "--threshold",
            "0.01",
            "--fdr",
            "1",
        ]
    )
    assert rc == 0
    return paths


def test_labels_match_planted_tf(setup, called):
    calls = C.read_calls(called["tsv"])
    pos = calls[calls["sign"] > 0]
    sites = setup["sites"]
    assert len(pos) == len(sites)  # one call per planted site, duplicates merged
    for _, s in sites.iterrows():
        hit = pos[
            (pos["chrom"] == s["chrom"]) & (pos["start"] < s["end"]) & (pos["end"] > s["start"])
        ]
        assert len(hit) == 1, s
        assert hit["name"].iloc[0] == s["name"]
        assert hit["q"].iloc[0] <= 0.05
        assert hit["match_strand"].iloc[0] == "+"
        # Most sites lie in two overlapping windows: the call records both.
    assert (pos["n_windows"] >= 2).sum() >= len(sites) // 2


def test_negative_seqlets_called(called):
    calls = C.read_calls(called["tsv"])
    neg = calls[calls["sign"] < 0]
    assert len(neg) > 0
    assert (neg["attribution"] < 0).all()
    assert ((neg["end"] - neg["start"]) == 6).all()


def test_bed9_sorted_within_bounds_and_coloured(setup, called):
    lines = called["bed"].read_text().splitlines()
    assert lines[0].startswith("track ") and 'itemRgb="On"' in lines[0]
    bed = pd.read_csv(called["bed"], sep="\t", header=None, skiprows=1)
    assert bed.shape[1] == 9
    assert (bed[1] < bed[2]).all() and (bed[1] >= 0).all()
    assert (bed[2] <= bed[0].map(setup["sizes"])).all()
    order = bed.sort_values([0, 1, 2], kind="stable").index
    assert list(order) == list(bed.index)
    assert bed[4].between(0, 1000).all() and bed[4].max() == 1000
    # One colour per TF, the same function in every method.
    for name, rgb in zip(bed[3], bed[8]):
        assert rgb == tf_colour(name)
    assert tf_colour("CTCF") != tf_colour("unknown")


def test_bigbed_reads_back(setup, called):
    import pybigtools

    bb = pybigtools.open(str(called["bb"]))
    bed = pd.read_csv(called["bed"], sep="\t", header=None, skiprows=1)
    n = sum(len(list(bb.records(c))) for c in setup["sizes"])
    assert n == len(bed)
    first = next(iter(bb.records("chr1")))
    row = bed[bed[0] == "chr1"].iloc[0]
    assert (first[0], first[1], first[2]) == (row[1], row[2], row[3])


def test_null_filter_in_call_motifs(setup, tmp_path):
    """On the noisy method (a background to fit), the Laplace null at FDR 0.05 keeps the planted sites and writes
    its threshold per call; on the same relevance the filter only removes seqlets."""
    bed, tsv = tmp_path / "c.bed", tmp_path / "c.tsv"
    run_call_motifs(
        setup, setup["relevance"]["lrp"], bed, tsv, "--fdr", "0.05", "--null-kind", "laplace"
    )
    calls = C.read_calls(tsv)
    pos = calls[calls["sign"] > 0]
    assert len(pos) and (pos["window_score"] >= pos["null_threshold"]).all()
    assert pos["null_threshold"].nunique() == 1 and pos["null_threshold"].iloc[0] > 0
    hit = sum(
        bool(((pos.chrom == s.chrom) & (pos.start < s.end) & (pos.end > s.start)).any())
        for s in setup["sites"].itertuples()
    )
    assert hit == len(setup["sites"])
    run_call_motifs(setup, setup["relevance"]["lrp"], bed, tmp_path / "off.tsv", "--fdr", "1")
    assert len(C.read_calls(tmp_path / "off.tsv")) >= len(calls)


def test_merge_duplicates_keeps_strongest(tmp_path):
    calls = pd.DataFrame(
        {
            "chrom": ["chr1"] * 4,
            "start": [100, 101, 100, 500],
            "end": [110, 111, 110, 510],
            "region_index": [0, 1, 2, 2],
            "sign": [1, 1, -1, 1],
            "attribution": [5.0, 7.0, -3.0, 1.0],
            "seqlet_p": [1e-5] * 4,
        }
    )
    import tempfile

    before = tempfile.gettempdir()
    merged = C.merge_duplicates(calls, tmpdir=tmp_path / "bt")
    assert tempfile.gettempdir() == before  # pybedtools' process-wide tempdir is restored
    assert len(merged) == 3  # the two positive overlapping calls from windows 0 and 1 become one
    top = merged[(merged["sign"] > 0) & (merged["start"] < 200)]
    assert top["attribution"].tolist() == [7.0] and top["n_windows"].tolist() == [2]
    assert merged[merged["sign"] < 0]["n_windows"].tolist() == [1]


def test_bh_best_q():
    p = np.array([[0.01, 0.02, 0.5, 0.9], [0.04, 0.04, 0.04, 0.04]])
    q = bh_best_q(p)
    assert np.allclose(q, [0.04, 0.04])


def test_bad_index_is_one_line_error(setup, tmp_path):
    from lrp.steps.cli import main

    z = dict(np.load(setup["relevance"]["lrp"]))
    z["index"] = z["index"] + 1000
    bad = tmp_path / "bad.npz"
    np.savez(bad, **z)
    rc = main(
        [
            "call-motifs",
            "--relevance",
            str(bad),
            "--regions",
            str(setup["regions"]),
            "--motif-db",
            str(setup["db"]),
            "--fasta",
            str(setup["fasta"]),
            "--out-bed",
            str(tmp_path / "c.bed"),
            "--out-tsv",
            str(tmp_path / "c.tsv"),
        ]
    )
    assert rc == 1
    assert not (tmp_path / "c.bed").exists()


def test_min_target_keeps_only_windows_predicted_bound(setup, tmp_path):
    from lrp.genomics.regions import read_regions
    from lrp.genomics.store import open_store
    from lrp.motifs.database import load_motif_db

    arrays = open_store(setup["relevance"]["plrp_p0.5"], keys=("relevance", "ohe"))
    regions = read_regions(setup["regions"])
    db = load_motif_db(setup["db"])
    target = np.asarray(arrays.target)
    cut = float(np.median(target))
    every = C.call_motifs(arrays, regions, db, threshold=0.01, fdr=1, tmpdir=tmp_path)
    kept = C.call_motifs(
        arrays, regions, db, threshold=0.01, fdr=1, tmpdir=tmp_path, min_target=cut
    )
    assert 0 < len(kept) < len(every)
    # every kept call comes from a window at or above the cut
    rows = kept["region_index"].to_numpy()
    by_region = dict(zip(np.asarray(arrays.index).tolist(), target.tolist()))
    assert all(by_region[r] >= cut for r in rows)


def test_seqlets_read_by_blocks_are_tangermemes_on_the_whole_array():
    """The block-wise caller (three passes, the null built from block histograms) gives, bit for bit, what
    tangermeme's recursive_seqlets gives on all windows at once."""
    from tangermeme.seqlet import recursive_seqlets

    from lrp.motifs.seqlets import ProjectedRows, call_seqlets, project

    rng = np.random.default_rng(3)
    rel = rng.laplace(size=(120, 4, 150)).astype(np.float32)
    rel[rng.random(rel.shape) < 0.7] = 0
    rel[5:9, :, 40:50] *= 20
    want = recursive_seqlets(np.ascontiguousarray(project(rel), dtype=np.float32))
    want = want[want["attribution"] > 0]
    for rows in (7, 50, 120):
        got = call_seqlets(ProjectedRows(rel, rows), trim=0, merge_gap=-1, negative=False)
        w = want.sort_values(["example_idx", "start", "end"]).reset_index(drop=True)
        assert len(got) == len(w) > 0
        for a, b in (("example_idx",) * 2, ("start",) * 2, ("end",) * 2, ("p_value", "p-value")):
            assert np.array_equal(got[a].to_numpy(), w[b].to_numpy())
        np.testing.assert_array_equal(got["attribution"].to_numpy(), w["attribution"].to_numpy())
        full = call_seqlets(project(rel))
        assert call_seqlets(ProjectedRows(rel, rows)).equals(full)


def test_zero_calls_end_to_end(setup, tmp_path):
    """All-zero relevance gives no seqlet: call-motifs still writes calls.bed (its track line), calls.tsv
    (the header) and a valid empty calls.bb, and ``plrp hub`` and ``plrp report`` accept them."""
    import pyBigWig

    from lrp.genomics.regions import read_bed
    from lrp.genomics.tracks import write_bigwig
    from lrp.steps.cli import main

    with np.load(setup["relevance"]["lrp"]) as z:
        arrays = {k: z[k] for k in z.files}
    for key in ("relevance", "hypothetical", "target"):
        arrays[key] = np.zeros_like(arrays[key])
    relevance = tmp_path / "zero" / "relevance.npz"
    relevance.parent.mkdir()
    np.savez(relevance, **arrays)
    bed, tsv, bb = (tmp_path / "zero" / f"calls.{k}" for k in ("bed", "tsv", "bb"))
    run_call_motifs(setup, relevance, bed, tsv, "--out-bigbed", str(bb))
    lines = bed.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("track ")
    calls = C.read_calls(tsv)
    assert len(calls) == 0 and {"chrom", "start", "end", "name", "q"} <= set(calls.columns)
    with pyBigWig.open(str(bb)) as handle:
        assert handle.isBigBed() and handle.chroms() == setup["sizes"]
        assert not any(handle.entries(c, 0, n) for c, n in setup["sizes"].items())

    regions = read_bed(setup["regions"], setup["sizes"])
    bw = tmp_path / "zero" / "relevance.bw"
    write_bigwig(bw, setup["sizes"], regions, np.zeros((len(regions), L), np.float32))
    hub = tmp_path / "hub"
    args = ["hub", "--bigwigs", f"zero={bw}", "--bigbeds", f"zero={bb}", "--fasta"]
    args += [str(setup["fasta"]), "--known-sites", str(setup["known"]), "--out-dir", str(hub)]
    assert main(args) == 0
    # no call to centre on: the hub opens on the first known site
    first = setup["sites"].iloc[0]
    pos = next(
        x for x in (hub / "genomes.txt").read_text().splitlines() if x.startswith("defaultPos")
    )
    chrom, span = pos.split()[1].split(":")
    lo, hi = map(int, span.split("-"))
    assert chrom == first["chrom"] and lo <= first["start"] < first["end"] <= hi
    assert "track plrp_calls_zero" in (hub / "demo" / "trackDb.txt").read_text()

    report = tmp_path / "report" / "report.html"
    args = ["report", "--out", str(report), "--igv-fasta", str(setup["fasta"])]
    args += ["--igv-bigwigs", f"zero={bw}", "--igv-calls", f"zero={bb}", f"zero_bed={bed}"]
    args += ["--igv-known-sites", str(setup["known"]), "--igv-regions", str(setup["regions"])]
    assert main(args) == 0
    assert report.stat().st_size > 0
