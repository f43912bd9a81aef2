"""lrp.genomics.regions: BED validation, re-centring, tiling with N gaps, region tables, shards, CLI."""

import warnings

import numpy as np
import pandas as pd
import pytest
from test_genome import write_fasta

from lrp.core.errors import PlrpError
from lrp.genomics.regions import (
    count_regions,
    n_shards,
    read_bed,
    read_regions,
    resize,
    shard_bounds,
    sort_regions,
    tile,
    write_regions,
)
from lrp.steps.cli import main

SIZES = {"chr1": 1000, "chr2": 500}


def bed(tmp_path, text, name="r.bed"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_read_bed_columns_and_skips(tmp_path):
    path = bed(
        tmp_path,
        "track name=x\nbrowser position chr1:1-10\n# comment\n\n"
        "chr1\t10\t20\n"
        "chr2\t5\t50\tsite\t7.5\t-\n"
        "chr1\t0\t5\tp\t0\t+\t1\t4\t255,0,0\n",
    )
    df = read_bed(path, SIZES)
    assert list(df.columns[:9]) == [
        "chrom", "start", "end", "name", "score", "strand", "thickStart", "thickEnd", "itemRgb"
    ]  # fmt: skip
    assert df["start"].tolist() == [10, 5, 0] and df["end"].tolist() == [20, 50, 5]
    assert df["name"].tolist() == ["chr1:10-20", "site", "p"]
    assert df["score"].tolist() == [0.0, 7.5, 0.0] and df["strand"].tolist() == [".", "-", "+"]
    assert df["itemRgb"].isna().tolist() == [True, True, False] and df["itemRgb"][2] == "255,0,0"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "no regions"),
        ("track name=x\n# only comments\n", "no regions"),
        ("chr1\t10\t20\nchr1\t10\n", "line 2: 2 column"),
        ("chr1\t10\t20\nchr1\tten\t20\n", "line 2: start/end not integers"),
        ("chr1\t1.5\t20\n", "line 1: start/end not integers"),
        ("chr1\t-5\t20\n", "line 1: negative coordinate"),
        ("chr1\t20\t20\n", "line 1: start 20 >= end 20"),
        ("chr1\t30\t20\n", "line 1: start 30 >= end 20"),
        ("chr2\t10\t501\n", "line 1: end 501 is past the end of chr2"),
        ("#h\nchr3\t10\t20\n", "line 2: contig 'chr3' is not in the FASTA"),
        ("chr1\t10\t20\tx\tabc\n", "line 1: score 'abc'"),
        ("chr1\t10\t20\tx\t0\t*\n", "line 1: strand"),
    ],
)
def test_read_bed_errors(tmp_path, text, problem):
    path = bed(tmp_path, text)
    with pytest.raises(PlrpError, match=problem) as err:
        read_bed(path, SIZES)
    msg = str(err.value)
    assert msg.startswith(path) and "Fix:" in msg and "\n" not in msg


def test_read_bed_missing(tmp_path):
    with pytest.raises(PlrpError, match="not found"):
        read_bed(tmp_path / "no.bed", SIZES, what="known sites")


def test_resize_centres_and_shifts():
    df = pd.DataFrame(
        {
            "chrom": ["chr1", "chr1", "chr1", "chr2", "chr1"],
            "start": [100, 0, 990, 200, 500],
            "end": [110, 10, 1000, 201, 700],
            "name": list("abcde"),
        }
    )
    out = resize(df, 100, SIZES)
    assert (out["end"] - out["start"]).eq(100).all()
    assert out["start"].tolist() == [55, 0, 900, 150, 550]  # centred, then shifted inside
    assert out["name"].tolist() == list("abcde")
    with pytest.warns(UserWarning, match="dropped 1 region"):
        out = resize(df, 600, SIZES)
    assert "d" not in out["name"].tolist() and len(out) == 4


def test_sort_regions_fasta_order():
    df = pd.DataFrame({"chrom": ["chr2", "chr10", "chr2"], "start": [5, 9, 1], "end": [6, 10, 2]})
    out = sort_regions(df, ["chr10", "chr2"])
    assert out["chrom"].tolist() == ["chr10", "chr2", "chr2"] and out["start"].tolist() == [9, 1, 5]


def coverage(regions, sizes):
    cov = {c: np.zeros(n, np.int64) for c, n in sizes.items()}
    for c, s, e in zip(regions["chrom"], regions["start"], regions["end"]):
        cov[c][s:e] += 1
    return cov


@pytest.fixture
def gappy(tmp_path):
    rng = np.random.default_rng(3)

    def dna(n):
        return "".join(rng.choice(list("ACGT"), n))

    records = {
        "chrA": dna(150) + "N" * 100 + dna(30) + "N" * 300 + dna(5) + "NNN" + dna(400),
        "chrB": "N" * 40 + dna(1000) + "N" * 30 + dna(500) + "N" * 7,
        "short": dna(40),
        "allN": "N" * 500,
        "exact": dna(100),
    }
    return write_fasta(tmp_path / "gappy.fa", records, width=50), records


@pytest.mark.parametrize("length, step", [(100, 50), (100, 100), (100, 30), (64, 64)])
def test_tile_covers_everything_outside_gaps(gappy, length, step):
    path, records = gappy
    sizes = {c: len(s) for c, s in records.items()}
    regions, gaps = tile(path, length, step)
    assert (regions["end"] - regions["start"]).eq(length).all()
    assert regions.equals(sort_regions(regions, list(sizes)))
    cov, gcov = coverage(regions, sizes), coverage(gaps, sizes)
    for chrom, seq in records.items():
        assert np.all((cov[chrom] > 0) ^ (gcov[chrom] > 0)), chrom  # each base: window or gap
        assert gcov[chrom].max(initial=0) <= 1
        isn = np.frombuffer(seq.encode(), np.uint8) == ord("N")
        # Windows are never mostly N; the last window reaches the chromosome end where sequence is.
        for s, e in zip(*regions.loc[regions["chrom"] == chrom, ["start", "end"]].values.T):
            assert isn[s:e].mean() <= 0.5
    for c, s, e, name in zip(gaps["chrom"], gaps["start"], gaps["end"], gaps["name"]):
        allN = set(records[c][s:e]) == {"N"}
        assert name == {"short": "short_contig"}.get(c, "N" if allN else "N_rich")
    g = {(c, s, e) for c, s, e in zip(gaps["chrom"], gaps["start"], gaps["end"])}
    assert ("allN", 0, 500) in g and ("short", 0, 40) in g
    assert ("chrB", 0, 40) in g and ("chrB", 1040, 1070) in g and ("chrB", 1570, 1577) not in g
    exact = regions[regions["chrom"] == "exact"]
    assert exact["start"].min() == 0 and exact["end"].max() == 100
    chrB = regions[regions["chrom"] == "chrB"]
    assert chrB["start"].min() == 40 and chrB["end"].max() == 1577  # last window aligned to the end
    starts = chrB["start"].to_numpy()
    first = starts[starts + length <= 1040]  # the first segment, tiled from 40 every step
    assert np.all(np.diff(first)[:-1] == step) and first[-1] == 1040 - length


def test_tile_chroms_and_errors(gappy):
    path, _ = gappy
    regions, gaps = tile(path, 100, 50, chroms=["chrB"])
    assert set(regions["chrom"]) == {"chrB"} and set(gaps["chrom"]) == {"chrB"}
    with pytest.raises(PlrpError, match="chrZ: chromosome not in the FASTA"):
        tile(path, 100, 50, chroms=["chrZ"])


def test_tile_streams_large_chromosome(tmp_path):
    # Two N gaps crossing the 4 Mbp block boundary of the N scan.
    rng = np.random.default_rng(0)
    n = 5_000_000
    seq = np.frombuffer(rng.choice(np.frombuffer(b"ACGT", np.uint8), n).tobytes(), np.uint8).copy()
    seq[(1 << 22) - 500 : (1 << 22) + 500] = ord("N")
    seq[1000:1100] = ord("N")
    path = write_fasta(tmp_path / "big.fa", {"c": seq.tobytes().decode()}, width=80)
    regions, gaps = tile(path, 1000, 500)
    assert gaps[["start", "end"]].values.tolist() == [
        [1000, 1100],
        [(1 << 22) - 500, (1 << 22) + 500],
    ]
    assert regions["end"].max() == n


def test_region_table_roundtrip(tmp_path):
    df = pd.DataFrame({"chrom": ["chr1", "chr2"], "start": [0, 10], "end": [100, 110]})
    df["name"] = ["a", "b"]
    write_regions(df, tmp_path / "regions.bed")
    assert (
        tmp_path / "regions.bed"
    ).read_text() == "chr1\t0\t100\ta\t0\t.\nchr2\t10\t110\tb\t0\t.\n"
    back = read_regions(tmp_path / "regions.bed")
    assert back[["chrom", "start", "end", "name"]].equals(df)
    assert list(back.index) == [0, 1]


def test_region_table_partial_reads(tmp_path):
    n = 11
    df = pd.DataFrame({"chrom": ["chr1"] * 6 + ["chr2"] * 5, "start": np.arange(n) * 10})
    df["end"], df["name"] = df["start"] + 10, [f"r{i}" for i in range(n)]
    path = tmp_path / "regions.bed"
    write_regions(df, path)
    full = read_regions(path)
    assert count_regions(path) == n
    for lo, hi in [(0, 4), (4, 8), (8, 12), (10, 11), (11, 15), (20, 25), (3, 3)]:
        part = read_regions(path, rows=(lo, hi))  # one shard: rows [lo, hi), index = region rows
        if lo < n and hi > lo:
            assert part.equals(full.iloc[lo:hi]), (lo, hi)
        assert list(part.columns) == list(full.columns)
        assert list(part.index) == list(range(lo, min(hi, n)))
    coords = read_regions(path, coords_only=True)
    assert list(coords.columns) == ["chrom", "start", "end"]
    assert isinstance(coords["chrom"].dtype, pd.CategoricalDtype)
    assert coords.astype({"chrom": str}).equals(full[["chrom", "start", "end"]])
    # Blank lines and a last line without a newline are counted as read_regions reads them.
    (tmp_path / "odd.bed").write_text("\nchr1\t0\t10\ta\t0\t.\n\n\nchr1\t10\t20\tb\t0\t.")
    assert (
        count_regions(tmp_path / "odd.bed", chunk=3) == len(read_regions(tmp_path / "odd.bed")) == 2
    )
    with pytest.raises(PlrpError, match="region table not found"):
        count_regions(tmp_path / "missing.bed")
    with pytest.raises(PlrpError, match="region table not found"):
        read_regions(tmp_path / "missing.bed", rows=(0, 5))


@pytest.mark.parametrize("n, size", [(0, 3), (1, 3), (9, 3), (10, 3), (10, 100), (7, 1)])
def test_shards_cover_rows_once(n, size):
    bounds = shard_bounds(n, size)
    assert len(bounds) == n_shards(n, size)
    rows = [i for a, b in bounds for i in range(a, b)]
    assert rows == list(range(n))
    assert all(b - a == size for a, b in bounds[:-1])
    with pytest.raises(ValueError):
        shard_bounds(5, 0)


def test_cli_bed_and_tile(gappy, tmp_path, capsys):
    path, _records = gappy
    b = bed(tmp_path, "chrB\t500\t510\tx\nchrA\t0\t10\ty\nchrB\t100\t110\tz\n")
    out = tmp_path / "regions.bed"
    assert main(["regions", "--fasta", path, "--length", "100", "--bed", b, "--out", str(out),
                 "--shard-size", "2", "--n-shards-out", str(tmp_path / "n.txt")]) == 0  # fmt: skip
    df = read_regions(out)
    assert df["name"].tolist() == ["y", "z", "x"] and df["start"].tolist() == [0, 55, 455]
    assert (tmp_path / "n.txt").read_text() == "2\n"
    gaps = tmp_path / "gaps.bed"
    argv = ["regions", "--fasta", path, "--length", "100", "--tile", "--step", "50"]
    assert main(argv + ["--out", str(out), "--gaps-out", str(gaps)]) == 0
    assert len(read_regions(out)) > 10 and "allN\t0\t500\tN" in gaps.read_text()
    # Errors are one line naming the file and line.
    bad = bed(tmp_path, "chrA\t0\tx\n", "bad.bed")
    assert (
        main(["regions", "--fasta", path, "--length", "100", "--bed", bad, "--out", str(out)]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("plrp regions: error: ") and "bad.bed: line 1" in err


def test_no_warning_when_nothing_dropped():
    df = pd.DataFrame({"chrom": ["chr1"], "start": [10], "end": [20]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resize(df, 10, SIZES)["start"].tolist() == [10]
