"""plrp explain: one locus with the workflow's windows, model options and attribution.

A tiny demo CNN exported as a ``.pt2`` program (as the demo ships models) and a random genome, built here. The
equality test runs the workflow's own steps (``plrp regions --bed`` then ``plrp attribute``) on the same
regions and compares bit for bit on CPU.
"""

import numpy as np
import pandas as pd
import pytest

from lrp.steps.cli import main

L = 200
KWARGS = {"n_tasks": 2, "length": L, "filters": 4}
TARGET = ["--target", '{"index": 1}']
SIZES = {"chr1": 3000, "chr2": 1500, "tiny": 120}
# 1-based inclusive, as a browser shows them; the second is 151 bp (an odd width: a 1-based/0-based
# slip moves its window by one base) and near the end of chr2 (its window is shifted inside the contig)
REGIONS = ["chr1:1,001-1,151", "chr2:1,401-1,500", "chr1:2000"]
BED = [("chr1", 1000, 1151), ("chr2", 1400, 1500), ("chr1", 1999, 2000)]
WINDOWS = [("chr1", 975, 1175), ("chr2", 1300, 1500), ("chr1", 1899, 2099)]


def _write_fasta(path, records, width=60):
    with open(path, "w") as handle:
        for name, seq in records.items():
            handle.write(f">{name}\n")
            handle.writelines(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import torch

    from lrp.demo.model import build_model
    from lrp.demo.train import export

    d = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(3)
    genome = {c: "".join(rng.choice(list("ACGT"), n)) for c, n in SIZES.items()}
    genome["chr1"] = genome["chr1"][:1100] + "NNNN" + genome["chr1"][1104:]  # N in the first window
    _write_fasta(d / "g.fa", genome)
    model = build_model(**KWARGS, seed=0).eval()
    torch.export.save(export(model, L), d / "model.pt2")
    (d / "peaks.bed").write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in BED))
    return d, genome


def _explain(d, out, *args, method="lrp", extra=()):
    argv = ["explain", "--model", str(d / "model.pt2"), "--length", str(L), "--method", method]
    argv += ["--device", "cpu", *TARGET, "--out-dir", str(out), *args, *extra]
    return main(argv)


def _workflow(d, out, method, extra=()):
    """The workflow's steps on the BED: ``plrp regions`` then ``plrp attribute`` -> (regions, shard)."""
    regions = out / "regions.bed"
    assert main(["regions", "--fasta", str(d / "g.fa"), "--length", str(L)]
                + ["--bed", str(d / "peaks.bed"), "--out", str(regions)]) == 0  # fmt: skip
    shard = out / "shard.npz"
    argv = ["attribute", "--fasta", str(d / "g.fa"), "--regions", str(regions)]
    argv += ["--model", str(d / "model.pt2"), "--length", str(L), "--method", method]
    argv += ["--device", "cpu", *TARGET, "--out", str(shard), *extra]
    assert main(argv) == 0
    table = pd.read_csv(
        regions, sep="\t", header=None, names=["chrom", "start", "end"], usecols=[0, 1, 2]
    )
    return table, np.load(shard)


@pytest.mark.parametrize(
    "method, extra",
    [
        ("lrp", ()),
        ("plrp-lambda", ()),
        ("plrp-lambda", ("--method-params", '{"p_pos": 0.4}', "--alphabet", "TGCA")),
    ],
)
def test_explain_of_a_region_equals_the_workflow_relevance_of_that_window(
    data, tmp_path, method, extra
):
    d, _ = data
    regions = [a for r in REGIONS for a in ("--region", r)]
    assert (
        _explain(
            d, tmp_path / "x", "--fasta", str(d / "g.fa"), *regions, method=method, extra=extra
        )
        == 0
    )
    table, shard = _workflow(d, tmp_path, method, extra)
    windows = pd.read_csv(tmp_path / "x" / "windows.tsv", sep="\t")
    assert list(windows[["chrom", "start", "end"]].itertuples(index=False, name=None)) == WINDOWS
    assert list(windows["name"]) == REGIONS
    # the workflow sorts its region table; match its rows by coordinates
    row_of = {w: i for i, w in enumerate(table.itertuples(index=False, name=None))}
    rows = [row_of[w] for w in WINDOWS]
    for key in ("relevance", "hypothetical", "ohe"):
        got = np.load(tmp_path / "x" / f"{key}.npy")
        assert got.dtype == np.float32 and got.shape == (len(REGIONS), 4, L)
        assert np.array_equal(got, shard[key][rows].astype(np.float32)), key
    assert np.array_equal(windows["target"].to_numpy(np.float32), shard["target"][rows])
    # one region on its own (a batch of one) equals its row of the workflow's shard of three
    assert _explain(d, tmp_path / "one", "--fasta", str(d / "g.fa"), "--region", REGIONS[1],
                    method=method, extra=extra) == 0  # fmt: skip
    one = np.load(tmp_path / "one" / "relevance.npy")
    assert np.array_equal(one, shard["relevance"][[rows[1]]])
    assert np.abs(shard["relevance"]).sum() > 0
    assert np.all(np.load(tmp_path / "x" / "ohe.npy")[0, :, 1100 - 975 : 1104 - 975] == 0)  # the Ns
    if method == "lrp" and not extra:  # the same regions as a BED give the same files
        assert (
            _explain(d, tmp_path / "bed", "--fasta", str(d / "g.fa"), "--bed", str(d / "peaks.bed"))
            == 0
        )
        for key in ("relevance.npy", "hypothetical.npy", "ohe.npy", "relevance.bedGraph"):
            assert (tmp_path / "bed" / key).read_bytes() == (tmp_path / "x" / key).read_bytes(), key


def test_a_different_window_gives_different_relevance(data, tmp_path):
    """The equality above is not vacuous: one base off, the relevance differs."""
    d, _ = data
    assert (
        _explain(d, tmp_path / "a", "--fasta", str(d / "g.fa"), "--region", "chr1:1,001-1,151") == 0
    )
    assert (
        _explain(d, tmp_path / "b", "--fasta", str(d / "g.fa"), "--region", "chr1:1,002-1,152") == 0
    )
    a, b = (np.load(tmp_path / x / "relevance.npy") for x in "ab")
    assert not np.array_equal(a, b)


def _read_bedgraph(path):
    lines = path.read_text().splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    return lines[0], [(c, int(s), int(e), float(v)) for c, s, e, v in rows]


def test_bedgraph_reads_back_as_the_projected_relevance(data, tmp_path):
    """Per base, the bedGraph holds relevance.sum(1); overlapping windows keep the base of the window whose
    centre is nearest (ties: the left one), as the workflow's bigWig; intervals sorted and disjoint."""
    d, _ = data
    regions = [
        "chr1:1,001-1,200",
        "chr1:1,051-1,250",
        "chr2:101-300",
    ]  # the first two overlap by 150
    args = [a for r in regions for a in ("--region", r)]
    assert _explain(d, tmp_path, "--fasta", str(d / "g.fa"), *args, method="plrp-lambda") == 0
    track, rows = _read_bedgraph(tmp_path / "relevance.bedGraph")
    assert track.startswith("track type=bedGraph") and 'name="plrp plrp-lambda"' in track
    projected = np.load(tmp_path / "relevance.npy").sum(1, dtype=np.float32)
    got = {}
    last = {}
    for chrom, s, e, v in rows:
        assert s < e and s >= last.get(chrom, 0), (chrom, s, e)
        last[chrom] = e
        for x in range(s, e):
            got[chrom, x] = v
    assert [c for c in dict.fromkeys(r[0] for r in rows)] == ["chr1", "chr2"]
    a, b = 1000, 1050  # window starts on chr1
    for x in range(1000, 1250):
        left = x < b or (x < a + L and 2 * x <= a + b + L - 1)
        want = projected[0, x - a] if left else projected[1, x - b]
        assert got["chr1", x] == pytest.approx(float(want), rel=1e-5, abs=1e-12), x
    for x in range(100, 300):
        assert got["chr2", x] == pytest.approx(float(projected[2, x - 100]), rel=1e-5, abs=1e-12)
    assert len(got) == 250 + 200  # every covered base once, nothing else
    assert max(abs(v) for *_, v in rows) > 0


def test_fasta_of_sequences(data, tmp_path):
    """Each record's central L bp are explained, named by the record; equal to the same genome window;
    logos are PNG and SVG, the same bytes on a rerun, and capped by --max-logos."""
    d, genome = data
    seqs = {
        "enhancer": genome["chr1"][975:1175],  # exactly L: the window of chr1:1,001-1,151
        "longer": genome["chr1"][1884:2115],  # L + 31: central window from 15 = chr1:1,900-2,099
        "third": genome["chr1"][0:L],
    }
    fa = _write_fasta(d / "seqs.fa", seqs)
    for out in ("s", "s2"):
        assert _explain(d, tmp_path / out, "--sequences", fa, extra=("--max-logos", "2")) == 0
    assert _explain(d, tmp_path / "r", "--fasta", str(d / "g.fa"), "--region", "chr1:1,001-1,151",
                    "--region", "chr1:1,900-2,099") == 0  # fmt: skip
    windows = pd.read_csv(tmp_path / "s" / "windows.tsv", sep="\t")
    assert list(windows[["name", "chrom", "start", "end"]].itertuples(index=False, name=None)) == [
        ("enhancer", "enhancer", 0, L),
        ("longer", "longer", 15, 15 + L),
        ("third", "third", 0, L),
    ]
    rel = np.load(tmp_path / "s" / "relevance.npy")
    assert np.array_equal(rel[:2], np.load(tmp_path / "r" / "relevance.npy"))
    _, rows = _read_bedgraph(tmp_path / "s" / "relevance.bedGraph")
    assert [c for c in dict.fromkeys(r[0] for r in rows)] == ["enhancer", "longer", "third"]
    longer = [r for r in rows if r[0] == "longer"]
    assert longer[0][1] == 15 and longer[-1][2] == 15 + L
    names = sorted(p.name for p in (tmp_path / "s").glob("logo_*"))
    assert names == ["logo_0.png", "logo_0.svg", "logo_1.png", "logo_1.svg"]
    for name in names:
        assert (tmp_path / "s" / name).read_bytes() == (tmp_path / "s2" / name).read_bytes(), name
    assert (tmp_path / "s" / "logo_0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "s").glob(".*"))  # no temporaries left


def test_parse_region_is_one_based_inclusive():
    from lrp.attribution.locus import parse_region

    sizes = {"chr1": 5000, "HLA-A*01:01": 3000}
    assert parse_region("chr1:1,001-2,000", sizes) == ("chr1", 1000, 2000)
    assert parse_region(" chr1:1-5000 ", sizes) == ("chr1", 0, 5000)
    assert parse_region("chr1:42", sizes) == ("chr1", 41, 42)
    assert parse_region("HLA-A*01:01:10-20", sizes) == ("HLA-A*01:01", 9, 20)


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--fasta", "G", "--region", "chr1-100-300"],
            ["--region", "'chr1-100-300'", "not a region", "chr:start-end"],
        ),
        (
            ["--fasta", "G", "--region", "chr1:300-100"],
            ["--region", "chr1:300-100", "start 300", "Fix:"],
        ),
        (
            ["--fasta", "G", "--region", "chrX:1-300"],
            ["--region", "chrX", "not in", "chr1, chr2, tiny"],
        ),
        (
            ["--fasta", "G", "--region", "chr2:1,400-1,600"],
            ["chr2:1,400-1,600", "past the end of chr2 (1500 bp", "Fix:"],
        ),
        (
            ["--fasta", "G", "--region", "tiny:1-100"],
            ["tiny", "120 bp, shorter than the model's input length 200", "Fix:"],
        ),
        (["--fasta", "G"], ["--region", "--bed", "--sequences", "Fix:"]),
        (["--fasta", "G", "--bed", "B"], ["peaks_bad.bed", "line 1", "contig 'chrQ'", "Fix:"]),
        (["--sequences", "S"], ["short.fa", "short", "150 bp, shorter", "Fix:"]),
        (
            ["--fasta", "G", "--region", "chr1:1-300", "--method-params", '{"p_pos": 2}'],
            ["p_pos = 2", "Fix:"],
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_input_and_the_fix(data, tmp_path, capsys, args, words):
    d, _ = data
    (tmp_path / "peaks_bad.bed").write_text("chrQ\t0\t100\n")
    _write_fasta(tmp_path / "short.fa", {"ok": "A" * L, "short": "C" * 150})
    subst = {
        "G": str(d / "g.fa"),
        "B": str(tmp_path / "peaks_bad.bed"),
        "S": str(tmp_path / "short.fa"),
    }
    args = [subst.get(a, a) for a in args]
    method = "plrp-lambda" if "--method-params" in args else "lrp"
    assert _explain(d, tmp_path / "out", *args, method=method) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and err[0].startswith("plrp explain: error: "), err
    for word in words:
        assert word in err[0], (word, err[0])
    assert not (tmp_path / "out").exists()


def test_outputs_are_documented_shapes(data, tmp_path):
    """ohe.npy is (N, 4, L) float32 one-hot in ACGT order: decoding it gives the genome's window."""
    from lrp.genomics.genome import decode

    d, genome = data
    assert _explain(d, tmp_path, "--fasta", str(d / "g.fa"), "--region", "chr2:1,301-1,500") == 0
    ohe = np.load(tmp_path / "ohe.npy")
    assert ohe.dtype == np.float32 and ohe.shape == (1, 4, L)
    assert decode(ohe[0]) == genome["chr2"][1300:1500]
