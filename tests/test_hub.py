"""Track hub and IGV session: structural checks on small tracks built here (no workflow run)."""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrp.genomics.genome import chrom_sizes
from lrp.genomics.tracks import write_bigbed, write_bigwig
from lrp.genomics.twobit import SIGNATURE, read_2bit, write_2bit
from lrp.report.colours import tf_colour
from lrp.report.hub import BIGBED_MAGIC, BIGWIG_MAGIC, magic, named_paths, robust_limit
from lrp.steps.cli import main

#: (chrom, start, end, TF): planted sites of the small test genome
SITES = [
    ("chr1", 5000, 5020, "CTCF"),
    ("chr1", 12000, 12012, "GATA1"),
    ("chr1", 21000, 21016, "CTCF"),
    ("chr2", 3000, 3010, "NRF1"),
]
METHODS = ("lrp", "plrp")


def make_run(root):
    """A small run: FASTA, regions, known sites, a bigWig and a calls bigBed per method (in a folder
    named by the method, as the workflow lays them out). Returns a dict of paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    seqs = {c: "".join(rng.choice(list("ACGT"), n)) for c, n in (("chr1", 30_000), ("chr2", 8_000))}
    s2 = seqs["chr2"]
    seqs["chr2"] = s2[:100] + s2[100:160].lower() + "N" * 40 + s2[200:]  # soft-mask and a gap
    fasta = root / "genome.fa"
    with open(fasta, "w") as handle:
        for name, seq in seqs.items():
            handle.write(f">{name} test\n")
            handle.writelines(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
    sizes = chrom_sizes(fasta)
    known = root / "known_sites.bed"
    pd.DataFrame(
        [(c, s, e, tf, 900, "+") for c, s, e, tf in SITES],
    ).to_csv(known, sep="\t", header=False, index=False)
    regions = pd.DataFrame(
        [(c, a, a + 1000) for c, n in sizes.items() for a in range(0, n, 1000)],
        columns=["chrom", "start", "end"],
    )
    regions["name"] = [f"r{i}" for i in range(len(regions))]
    regions["score"], regions["strand"] = 0, "."
    regions_bed = root / "regions.bed"
    regions.to_csv(regions_bed, sep="\t", header=False, index=False)
    out = {
        "fasta": fasta,
        "known": known,
        "regions": regions_bed,
        "bw": {},
        "bb": {},
        "sizes": sizes,
    }
    for k, method in enumerate(METHODS):
        values = np.zeros((len(regions), 1000), np.float32)
        if method == "lrp":  # dense: noise everywhere, negative too
            values += rng.normal(0, 0.01, values.shape).astype(np.float32)
        for c, s, e, _ in SITES:
            row = int(np.flatnonzero((regions["chrom"] == c) & (regions["start"] <= s))[-1])
            lo = s - int(regions["start"][row])
            values[row, lo : lo + (e - s)] += 1.0 - 0.2 * k
        d = root / method
        d.mkdir()
        write_bigwig(d / "relevance.bw", sizes, regions, values)
        calls = pd.DataFrame(
            [(c, s + k, e - k, tf, 1000 - 100 * i, "+") for i, (c, s, e, tf) in enumerate(SITES)],
            columns=["chrom", "start", "end", "name", "score", "strand"],
        )
        calls["thickStart"], calls["thickEnd"] = calls["start"], calls["end"]
        calls["itemRgb"] = calls["name"].map(tf_colour)
        write_bigbed(d / "calls.bb", sizes, calls)
        calls.to_csv(d / "calls.bed", sep="\t", header=False, index=False)
        out["bw"][method], out["bb"][method] = d / "relevance.bw", d / "calls.bb"
    return out


def stanzas(path):
    """A hub text file -> list of ``{setting: value}`` (blank lines separate stanzas)."""
    out, cur = [], {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            if cur:
                out.append(cur)
            cur = {}
        elif not line.startswith("#"):
            key, _, value = line.partition(" ")
            assert key not in cur, f"{path}: {key} twice in one stanza"
            cur[key] = value.strip()
    if cur:
        out.append(cur)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run"))


def _hub(run, out, *extra):
    rc = main(
        [
            "hub",
            "--bigwigs",
            *map(str, run["bw"].values()),
            "--bigbeds",
            *map(str, run["bb"].values()),
            "--fasta",
            str(run["fasta"]),
            "--known-sites",
            str(run["known"]),
            "--out-dir",
            str(out),
            *extra,
        ]
    )
    assert rc == 0
    return out


def test_assembly_hub_structure(run, tmp_path):
    out = _hub(run, tmp_path / "hub")
    (hub,) = stanzas(out / "hub.txt")
    for key in ("hub", "shortLabel", "longLabel", "genomesFile", "email"):
        assert hub.get(key), f"hub.txt lacks {key}"
    (genome,) = stanzas(out / hub["genomesFile"])
    for key in ("genome", "trackDb", "twoBitPath", "defaultPos", "organism", "description"):
        assert genome.get(key), f"genomes.txt lacks {key}"
    twobit = out / genome["twoBitPath"]
    assert magic(twobit) == SIGNATURE
    assert read_2bit(twobit)["chr1"] == _fasta(run["fasta"])["chr1"]
    chrom, span = genome["defaultPos"].split(":")
    lo, hi = map(int, span.split("-"))
    assert chrom in run["sizes"] and 1 <= lo < hi <= run["sizes"][chrom]

    trackdb = out / genome["trackDb"]
    tracks = stanzas(trackdb)
    names = [t["track"] for t in tracks]
    assert len(names) == len(set(names))
    by_name = {t["track"]: t for t in tracks}
    composites = {n for n, t in by_name.items() if t.get("compositeTrack") == "on"}
    kinds = {"bigWig": BIGWIG_MAGIC, "bigBed": BIGBED_MAGIC}
    children = {}
    for t in tracks:
        kind = t["type"].split()[0]
        assert kind in kinds, t
        if "parent" in t:
            parent = t["parent"].split()[0]
            assert parent in composites and by_name[parent]["type"].split()[0] == kind
            children.setdefault(parent, []).append(t)
        if "bigDataUrl" in t:
            path = (trackdb.parent / t["bigDataUrl"]).resolve()
            assert path.is_file(), f"{t['track']}: {path} missing"
            assert not Path(t["bigDataUrl"]).is_absolute()
            assert magic(path) == kinds[kind], f"{t['track']}: type {kind} but not such a file"
        else:
            assert t["track"] in composites, f"{t['track']}: no data and not a composite"
    wig = [c for c in composites if by_name[c]["type"] == "bigWig"]
    bed = [c for c in composites if by_name[c]["type"].startswith("bigBed")]
    assert len(wig) == 1 and len(bed) == 1
    assert [t["shortLabel"] for t in children[wig[0]]] == list(METHODS)  # named by their folders
    colours = set()
    for t in children[wig[0]]:
        assert t["autoScale"] == "off" and t["maxHeightPixels"]
        lo, hi = map(float, t["viewLimits"].split(":"))
        assert lo < 0 < hi if t["shortLabel"] == "lrp" else lo == 0 < hi
        assert 0.5 < hi <= 1.1  # the sites' relevance, not the noise or nothing
        colours.add(t["color"])
    assert len(colours) == len(METHODS)
    for t in children[bed[0]]:
        assert t["itemRgb"] == "on" and t["type"] == "bigBed 9"
    known = [t for t in tracks if "known" in t["track"]]
    assert len(known) == 1 and known[0]["itemRgb"] == "on"


def test_igv_session(run, tmp_path):
    out = _hub(run, tmp_path / "hub")
    session = out / "igv_session.xml"
    root = ET.parse(session).getroot()
    assert root.tag == "Session"
    genome = Path(
        root.get("genome")
    )  # absolute: IGV desktop matches tracks to files by absolute path
    assert genome == run["fasta"].resolve()
    assert Path(f"{genome}.fai").is_file()
    chrom = root.get("locus").split(":")[0]
    assert chrom in run["sizes"]
    paths = [r.get("path") for r in root.iter("Resource")]
    assert len(paths) == 2 * len(METHODS) + 1
    for p in paths:
        assert Path(p).is_absolute() and Path(p).is_file(), p
    ids = {t.get("id") for t in root.iter("Track")}
    assert set(paths) <= ids
    for t in root.iter("Track"):
        if t.get("renderer") == "BAR_CHART":
            r = t.find("DataRange")
            assert (
                float(r.get("minimum")) < float(r.get("maximum")) and t.get("autoScale") == "false"
            )


def test_copy_and_ucsc_assembly(run, tmp_path):
    out = _hub(run, tmp_path / "hub", "--copy", "--assembly", "hg38")
    (genome,) = stanzas(out / "genomes.txt")
    assert genome["genome"] == "hg38" and "twoBitPath" not in genome
    assert not list(out.rglob("*.2bit"))
    trackdb = out / genome["trackDb"]
    for t in stanzas(trackdb):
        if "bigDataUrl" in t:
            path = (trackdb.parent / t["bigDataUrl"]).resolve()
            assert path.is_file() and out.resolve() in path.parents  # self-contained
    assert ET.parse(out / "igv_session.xml").getroot().get("genome") == "hg38"


def test_wrong_file_type_is_one_line_error(run, tmp_path, capsys):
    bb = str(run["bb"]["lrp"])
    rc = main(["hub", "--bigwigs", bb, "--fasta", str(run["fasta"]), "--out-dir", str(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert "not a bigWig file" in err and "Fix:" in err and "\n" not in err
    assert not (tmp_path / "hub.txt").exists()


def _fasta(path):
    out, name = {}, None
    for line in Path(path).read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = []
        else:
            out[name].append(line)
    return {k: "".join(v) for k, v in out.items()}


def test_twobit_roundtrip_blocks(run, tmp_path, monkeypatch):
    import lrp.genomics.twobit

    expected = _fasta(run["fasta"])
    assert "n" not in expected["chr2"][:200] and expected["chr2"][100:160].islower()
    for block in (8, 1 << 24):  # runs of N and lower case that cross block ends are joined
        monkeypatch.setattr(lrp.genomics.twobit, "BLOCK", block)
        write_2bit(run["fasta"], tmp_path / "g.2bit")
        assert read_2bit(tmp_path / "g.2bit") == expected
    data = (tmp_path / "g.2bit").read_bytes()
    assert int.from_bytes(data[:4], "little") == SIGNATURE and data[4:8] == bytes(4)


def test_twobit_bytes(tmp_path):
    (tmp_path / "t.fa").write_text(">s\nTCAGgNa\n")
    write_2bit(tmp_path / "t.fa", tmp_path / "t.2bit")
    data = (tmp_path / "t.2bit").read_bytes()
    # header, index (1-byte name length, name, offset 16 + 1 + 1 + 4 = 22), then the record
    assert data[:16] == bytes.fromhex("4327411a000000000100000000000000")
    assert data[16:22] == b"\x01s" + (22).to_bytes(4, "little")
    rec = data[22:]
    assert int.from_bytes(rec[0:4], "little") == 7
    assert rec[4:16] == b"".join(n.to_bytes(4, "little") for n in (1, 5, 1))  # one N block
    words = [int.from_bytes(rec[i : i + 4], "little") for i in range(16, 40, 4)]
    assert words == [2, 4, 6, 1, 1, 0]  # mask blocks g and a (N is upper case), reserved
    # T C A G -> 00 01 10 11; g N(stored as T) a pad -> 11 00 10 00
    assert rec[40:] == bytes([0b00011011, 0b11001000])
    assert read_2bit(tmp_path / "t.2bit") == {"s": "TCAGgNa"}


def test_named_paths_and_limits(run):
    assert named_paths(
        ["a/relevance.bw", "b/relevance.bw", "X=c/other.bw", "d/calls.bb", "e/lrp.bw"]
    ) == [
        ("a", Path("a/relevance.bw")),
        ("b", Path("b/relevance.bw")),
        ("X", Path("c/other.bw")),
        ("d", Path("d/calls.bb")),
        ("lrp", Path("e/lrp.bw")),
    ]
    lo, hi = robust_limit(run["bw"]["plrp"], percentile=99.9)
    assert lo == 0 and hi == pytest.approx(0.8, rel=1e-3)


def test_default_locus_without_calls(run, tmp_path):
    """The highest-scoring call; with zero calls (an empty bigBed) the first known site in genome order;
    with neither, the start of the first chromosome. The window stays inside its chromosome."""
    from lrp.genomics.regions import read_bed
    from lrp.report.hub import default_locus

    sizes = run["sizes"]
    empty = tmp_path / "empty.bb"
    write_bigbed(empty, sizes, pd.DataFrame(columns=["chrom", "start", "end", "name"]))
    known = read_bed(run["known"], sizes, what="known sites")
    calls = [("lrp", run["bb"]["lrp"]), ("none", empty)]
    assert default_locus(calls, sizes, known=known) == "chr1:4011-6010"  # site 0, score 1000
    shuffled = known.iloc[::-1].reset_index(drop=True)  # chr2's site first in the file
    assert default_locus([("none", empty)], sizes, known=shuffled) == "chr1:4011-6010"
    assert default_locus([("none", empty)], sizes) == "chr1:1-2000"
    late = pd.DataFrame({"chrom": ["chr2"], "start": [7990], "end": [8000]})
    assert default_locus([], sizes, known=late) == "chr2:6001-8000"  # kept inside chr2 (8000 bp)
