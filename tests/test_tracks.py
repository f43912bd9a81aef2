"""lrp.genomics.tracks: nearest-centre stitching, bigWig and bigBed written and read back for real."""

import itertools
import tracemalloc

import numpy as np
import pandas as pd
import pybigtools
import pyBigWig
import pytest
from test_regions import gappy  # noqa: F401 (fixture)

from lrp.genomics.genome import chrom_sizes
from lrp.genomics.regions import tile, write_regions
from lrp.genomics.tracks import (
    BED9_AUTOSQL,
    centre_crop,
    read_bigwig_values,
    write_bigbed,
    write_bigwig,
)
from lrp.steps.cli import main


def nearest_centre_oracle(regions, sizes):
    """Per base: the row whose window centre is nearest (ties: leftmost), or -1. Brute force."""
    owner = {c: np.full(n, -1) for c, n in sizes.items()}
    best = {c: np.full(n, np.inf) for c, n in sizes.items()}
    order = np.lexsort((regions["start"].to_numpy(),))  # leftmost first; strict < keeps it on ties
    for i in order:
        c, s, e = regions["chrom"][i], regions["start"][i], regions["end"][i]
        x = np.arange(s, e)
        d = np.abs(x - (s + e - 1) / 2)
        better = d < best[c][s:e]
        best[c][s:e][better] = d[better]
        owner[c][s:e][better] = i
    return owner


@pytest.mark.parametrize("starts", [[0, 10, 20, 25, 60, 200], [0, 7, 7, 14, 100], [5], [0, 3, 9]])
def test_centre_crop_matches_oracle(starts):
    L = 10
    regions = pd.DataFrame({"chrom": "c", "start": starts, "end": np.add(starts, L)})
    regions = regions.sample(frac=1, random_state=0).reset_index(drop=True)  # any row order
    ks, ke = centre_crop(regions)
    owner = nearest_centre_oracle(regions, {"c": 300})["c"]
    got = np.full(300, -1)
    for i, (a, b) in enumerate(zip(ks, ke)):
        assert regions["start"][i] <= a <= b <= regions["end"][i]
        assert np.all(got[a:b] == -1)  # every base written at most once
        got[a:b] = i
    assert np.array_equal(got, owner)


def test_centre_crop_ties_go_left():
    regions = pd.DataFrame({"chrom": "c", "start": [0, 5], "end": [10, 15]})
    ks, ke = centre_crop(regions)
    # Centres 4.5 and 9.5: base 7 is 2.5 from both -> left window.
    assert ks.tolist() == [0, 8] and ke.tolist() == [8, 15]
    nonover = pd.DataFrame({"chrom": ["c", "c", "d"], "start": [0, 10, 5], "end": [10, 20, 15]})
    assert [x.tolist() for x in centre_crop(nonover)] == [[0, 10, 5], [10, 20, 15]]


def bigwig_intervals(path):
    bw = pyBigWig.open(str(path))
    try:
        return bw.chroms(), {c: bw.intervals(c) or () for c in bw.chroms()}
    finally:
        bw.close()


@pytest.mark.parametrize("length, step", [(100, 50), (100, 30), (64, 64)])
def test_tiled_bigwig_covers_each_base_once(gappy, tmp_path, length, step):  # noqa: F811
    path, _records = gappy
    sizes = chrom_sizes(path)
    regions, gaps = tile(path, length, step)
    rng = np.random.default_rng(0)
    values = rng.standard_normal((len(regions), length)).astype(np.float32)
    out = tmp_path / "track.bw"
    write_bigwig(out, sizes, regions, values)
    header, intervals = bigwig_intervals(out)
    assert header == sizes and list(header) == list(sizes)  # all chromosomes, FASTA order
    owner = nearest_centre_oracle(regions, sizes)
    starts = regions["start"].to_numpy()
    for chrom, size in sizes.items():
        written = np.zeros(size, np.int64)
        for s, e, _ in intervals[chrom]:
            written[s:e] += 1
        in_gap = np.zeros(size, bool)
        for s, e in gaps.loc[gaps["chrom"] == chrom, ["start", "end"]].to_numpy():
            in_gap[s:e] = True
        assert np.array_equal(written, (~in_gap).astype(np.int64)), chrom  # once, gaps never
        got = read_bigwig_values(out, chrom, 0, size)
        assert np.all(np.isnan(got[in_gap]))
        rows = owner[chrom]
        x = np.flatnonzero(rows >= 0)
        expected = values[rows[x], x - starts[rows[x]]]
        np.testing.assert_allclose(got[x], expected, rtol=1e-6)
        # Where a single window covers a base, the track equals that window's own value.
        cov = np.zeros(size, np.int64)
        mine = regions["chrom"] == chrom
        for i in np.flatnonzero(mine):
            cov[starts[i] : starts[i] + length] += 1
        for i in np.flatnonzero(mine):
            s = starts[i]
            single = np.flatnonzero(cov[s : s + length] == 1)
            np.testing.assert_allclose(got[s + single], values[i, single], rtol=1e-6)


def test_bigwig_from_relevance_3d_and_cli(gappy, tmp_path):  # noqa: F811
    path, _ = gappy
    regions, _ = tile(path, 100, 50)
    rng = np.random.default_rng(1)
    rel = rng.standard_normal((len(regions), 4, 100)).astype(np.float32)
    write_regions(regions, tmp_path / "regions.bed")
    np.savez(tmp_path / "relevance.npz", relevance=rel)  # uncompressed: memory-mapped member
    argv = ["bigwig", "--relevance", str(tmp_path / "relevance.npz"), "--regions"]
    argv += [str(tmp_path / "regions.bed"), "--fasta", path, "--out", str(tmp_path / "a.bw")]
    assert main(argv) == 0
    np.savez_compressed(tmp_path / "c.npz", relevance=rel)
    argv[2], argv[-1] = str(tmp_path / "c.npz"), str(tmp_path / "b.bw")
    assert main(argv) == 0
    np.save(tmp_path / "c.npy", rel)  # the sibling .npy is preferred
    argv[-1] = str(tmp_path / "d.bw")
    assert main(argv) == 0
    r0 = regions.iloc[0]
    proj = rel[0].sum(0)
    for name in ("a.bw", "b.bw", "d.bw"):
        got = read_bigwig_values(tmp_path / name, r0["chrom"], r0["start"], r0["start"] + 10)
        np.testing.assert_allclose(got, proj[:10], rtol=1e-5)
    # Row count mismatch -> one-line error naming the file.
    np.save(tmp_path / "c.npy", rel[:-1])
    assert main(argv) == 1


def test_bigwig_memory_does_not_scale_with_chromosomes(tmp_path):
    """Peak Python/numpy memory of write_bigwig from a memmap is set by one chromosome."""
    L, per_chrom = 1000, 200

    def peak(n_chroms):
        sizes = {f"c{i}": per_chrom * L for i in range(n_chroms)}
        starts = np.arange(per_chrom) * L
        regions = pd.DataFrame(
            {"chrom": np.repeat(list(sizes), per_chrom), "start": np.tile(starts, n_chroms)}
        )
        regions["end"] = regions["start"] + L
        mm = np.lib.format.open_memmap(
            tmp_path / f"v{n_chroms}.npy", "w+", np.float32, (len(regions), L)
        )
        mm[:] = 1.0
        mm.flush()
        values = np.load(tmp_path / f"v{n_chroms}.npy", mmap_mode="r")
        tracemalloc.start()
        write_bigwig(tmp_path / f"m{n_chroms}.bw", sizes, regions, values)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, values.nbytes

    small, _ = peak(2)
    large, nbytes = peak(20)
    print(f"peak traced memory: 2 chromosomes {small} B, 20 chromosomes {large} B")
    assert large < 1.5 * small + (1 << 20), (small, large)
    assert large < nbytes / 4


def test_bigbed_roundtrip(tmp_path):
    sizes = {"chr2": 1000, "chr10": 500}
    df = pd.DataFrame(
        {
            "chrom": ["chr10", "chr2", "chr2"],
            "start": [5, 100, 10],
            "end": [20, 120, 30],
            "name": ["CTCF", "GATA1", "CTCF"],
            "score": [1000, 350.4, 2000],
            "strand": ["+", "-", "."],
            "thickStart": [5, 100, 10],
            "thickEnd": [20, 120, 30],
            "itemRgb": ["255,0,0", "0,0,255", "255,0,0"],
        }
    )
    out = tmp_path / "calls.bb"
    write_bigbed(out, sizes, df)
    bb = pybigtools.open(str(out))
    assert bb.chroms() == sizes
    assert list(bb.records("chr2")) == [
        (10, 30, "CTCF", "1000", ".", "10", "30", "255,0,0"),
        (100, 120, "GATA1", "350", "-", "100", "120", "0,0,255"),
    ]
    assert list(bb.records("chr10")) == [(5, 20, "CTCF", "1000", "+", "5", "20", "255,0,0")]
    assert "bed9" in bb.sql()
    bb.close()


def test_runs_of_equal_values_are_one_interval(tmp_path):
    """Sparse values (zeros) are written run-length encoded; every base reads back exactly."""
    L = 50
    sizes = {"chrZ": 30, "c1": 400, "empty": 77, "c2": 120}  # FASTA order, not sorted
    starts = np.array([0, 25, 50, 75, 100, 150, 300, 350, 0, 50])
    chroms = ["c1"] * 8 + ["c2"] * 2
    regions = pd.DataFrame({"chrom": chroms, "start": starts, "end": starts + L})
    rng = np.random.default_rng(5)
    values = rng.standard_normal((len(regions), L)).astype(np.float32)
    values[rng.random(values.shape) < 0.8] = 0.0
    values[3, 10:20] = 2.5  # a run of a non-zero value
    out = tmp_path / "sparse.bw"
    write_bigwig(out, sizes, regions, values)
    header, intervals = bigwig_intervals(out)
    assert header == sizes and list(header) == list(sizes)  # every chromosome, FASTA order
    assert intervals["chrZ"] == () and intervals["empty"] == ()
    owner = nearest_centre_oracle(regions, sizes)
    for chrom in ("c1", "c2"):
        rows = owner[chrom]
        x = np.flatnonzero(rows >= 0)
        want = np.full(sizes[chrom], np.nan)
        want[x] = values[rows[x], x - starts[rows[x]]]
        got = read_bigwig_values(out, chrom, 0, sizes[chrom])
        np.testing.assert_array_equal(got, want.astype(np.float32))
        ivs = intervals[chrom]
        assert all(a < b for a, b, _ in ivs)
        assert all(
            b1 <= a2 for (_, b1, _), (a2, _, _) in itertools.pairwise(ivs)
        )  # sorted, disjoint
        # Touching intervals (one stitched piece) never hold the same value: runs are merged.
        assert all(v1 != v2 for (_, b1, v1), (a2, _, v2) in itertools.pairwise(ivs) if b1 == a2)
        assert len(ivs) < 0.5 * len(x)
    assert (88, 95, 2.5) in intervals["c1"]  # row 3 (start 75) keeps bases 88-112: one interval


def test_relevance_rows_are_read_with_file_reads(tmp_path):
    from lrp.genomics.store import NpyRows, open_relevance

    rel = np.arange(7 * 4 * 5, dtype=np.float32).reshape(7, 4, 5)
    np.save(tmp_path / "relevance.npy", rel)
    rows = open_relevance(tmp_path / "relevance.npz")  # the sibling .npy
    assert isinstance(rows, NpyRows) and not isinstance(rows, np.ndarray)
    assert rows.shape == rel.shape and rows.ndim == 3 and len(rows) == 7
    np.testing.assert_array_equal(rows[2], rel[2])
    np.testing.assert_array_equal(rows[-1, :, 1:3], rel[-1, :, 1:3])
    np.testing.assert_array_equal(rows[1:6:2], rel[1:6:2])
    np.testing.assert_array_equal(rows[[6, 0, 1, 2, 5]], rel[[6, 0, 1, 2, 5]])
    np.testing.assert_array_equal(rows.take(np.array([3, 4, 5])), rel[3:6])
    np.testing.assert_array_equal(np.asarray(rows), rel)
    with pytest.raises(IndexError):
        rows[7]


@pytest.mark.parametrize("n_chroms", [1, 3, 600, 70_000])  # B+ tree of 1, 2 (600) and 3 levels
def test_empty_bigbed_reads_back(tmp_path, n_chroms):
    """No records (a method with zero calls): a valid bigBed with every chromosome and no item, read by
    two independent readers (libBigWig via pyBigWig, pybigtools), not pybigtools' all-zero file."""
    sizes = {"chr2": 5000, "chr1": 1000, "chrM": 16} if n_chroms == 3 else {}
    sizes = sizes or {f"scaffold_{i}": 100 + i for i in range(n_chroms)}
    out = tmp_path / "calls.bb"
    write_bigbed(out, sizes, pd.DataFrame(columns=["chrom", "start", "end", "name"]))
    data = out.read_bytes()
    assert data[:4] == data[-4:] == (0x8789F2EB).to_bytes(4, "little")
    bb = pyBigWig.open(str(out))
    try:
        assert bb.isBigBed() and not bb.isBigWig()
        assert bb.chroms() == sizes
        assert bb.header()["version"] == 4 and bb.header()["nLevels"] == 0
        assert b"table bed9" in bb.SQL()
        for chrom in list(sizes)[:: max(1, n_chroms // 7)] + [list(sizes)[-1]]:
            assert not bb.entries(chrom, 0, sizes[chrom])
    finally:
        bb.close()
    bb = pybigtools.open(str(out))
    try:
        assert bb.chroms() == sizes
        assert bb.info()["chromCount"] == n_chroms and bb.info()["summary"]["basesCovered"] == 0
        assert "bed9" in bb.sql()
        for chrom in (next(iter(sizes)), list(sizes)[-1]):
            assert list(bb.records(chrom)) == []
    finally:
        bb.close()


def test_bigbed_with_records_is_pybigtools_file(tmp_path):
    """With records the writer is pybigtools, unchanged: the same bytes as pybigtools writes itself."""
    sizes = {"chr2": 1000, "chr10": 500}
    rows = [
        ("chr2", 10, 30, "CTCF\t1000\t.\t10\t30\t255,0,0"),
        ("chr10", 5, 20, "X\t0\t+\t5\t20\t0"),
    ]
    df = pd.DataFrame(
        [(c, s, e, *r.split("\t")) for c, s, e, r in rows],
        columns=["chrom", "start", "end", "name", "score", "strand", "thickStart", "thickEnd"]
        + ["itemRgb"],
    )
    ours = tmp_path / "ours.bb"
    write_bigbed(ours, sizes, df)
    direct = tmp_path / "direct.bb"
    entries = [rows[0], rows[1]]  # write_bigbed sorts by genome order: chr2 before chr10
    pybigtools.open(str(direct), "w").write(sizes, iter(entries), autosql=BED9_AUTOSQL)
    assert ours.read_bytes() == direct.read_bytes()
    bb = pyBigWig.open(str(ours))
    try:
        assert bb.entries("chr2", 0, 1000) == [(10, 30, rows[0][3])]
    finally:
        bb.close()
