"""End to end: the whole workflow on a tiny demo (simulate, train, regions, attribution in shards, tracks, motif
calls, motifs, logos, evaluation, report), run for real by Snakemake, three times:

- locally in one directory: every declared output exists and is valid; relevance is higher at the planted
  sites than elsewhere;
- locally again in a second directory: the same bytes;
- through the cluster-generic executor (tests/data/fake_sbatch.sh starts each job as its own background
  process, as sbatch would): the same bytes as the local run.
"""

import csv
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, snakemake, tiny

pytestmark = pytest.mark.slow

# Files that must be byte-identical between runs of the same config (arrays, tracks, calls, tables).
SAME_BYTES = (
    "resources/demo/genome.fa",
    "resources/demo/known_sites.bed",
    "resources/motif_database.meme",
    "results/demo/demo/regions.bed",
    "results/demo/demo/n_shards.txt",
    "results/demo/demo/chrom.sizes",
    "results/demo/demo/gaps.bed",
    "results/demo/demo/*/relevance.npy",
    "results/demo/demo/*/hypothetical.npy",
    "results/demo/demo/*/ohe.npy",
    "results/demo/demo/*/relevance.bw",
    "results/demo/demo/*/calls.bed",
    "results/demo/demo/*/calls.tsv",
    "results/demo/demo/*/calls.bb",
    "results/demo/demo/*/motifs.meme",
    "results/demo/demo/*/motif_matches.tsv",
)
# .npz archives: the same arrays (zip members carry write times, so the bytes may differ)
SAME_ARRAYS = ("results/demo/demo/*/relevance.npz", "results/demo/demo/*/shards/*.npz")


def _run(workdir, *args):
    result = snakemake(workdir, "--cores", "2", *args, config=tiny(), timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return Path(workdir)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The local run, made once per test session: under pytest-xdist the workers share it (a file lock)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder, shared by its workers
    workdir = base / "plrp_local_run"
    with FileLock(str(base / "plrp_local_run.lock")):
        if not (workdir / ".complete").exists():
            shutil.rmtree(workdir, ignore_errors=True)
            _run(workdir)
            (workdir / ".complete").touch()
    return workdir


def _digests(root, patterns):
    files = sorted(p for pattern in patterns for p in root.glob(pattern))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _arrays(root, patterns):
    out = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            with np.load(path, allow_pickle=False) as npz:
                out[str(path.relative_to(root))] = {k: npz[k] for k in npz.files}
    return out


def _assert_same(a, b):
    """The files of SAME_BYTES are byte-identical and the .npz archives hold identical arrays."""
    da, db = _digests(a, SAME_BYTES), _digests(b, SAME_BYTES)
    assert len(da) >= 13 and da.keys() == db.keys()
    differ = [name for name in da if da[name] != db[name]]
    assert not differ, f"files differ between {a} and {b}: {differ}"
    xa, xb = _arrays(a, SAME_ARRAYS), _arrays(b, SAME_ARRAYS)
    assert xa and xa.keys() == xb.keys()
    for name in xa:
        assert xa[name].keys() == xb[name].keys(), name
        for key in xa[name]:
            np.testing.assert_array_equal(xa[name][key], xb[name][key], err_msg=f"{name}:{key}")


def _summary(workdir):
    """Snakemake's own list of every output of the DAG: {path: (rule, status)}."""
    result = snakemake(workdir, "--summary", config=tiny())
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(result.stdout.strip().splitlines(), delimiter="\t"))
    header = rows[0]
    assert header[:3] == ["output_file", "date", "rule"], header
    return {row[0]: (row[2], row[header.index("status")]) for row in rows[1:] if len(row) > 2}


def _fasta_sizes(path):
    sizes, name = {}, None
    for line in Path(path).read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            sizes[name] = 0
        else:
            sizes[name] += len(line.strip())
    return sizes


def _bed(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith(("track", "browser", "#")):
            rows.append(line.split("\t"))
    return rows


def test_every_declared_output_exists_and_is_valid(local_run):
    import pyBigWig

    run = local_run
    outputs = _summary(run)
    methods = sorted(tiny()["methods"])
    rules = {rule for rule, _ in outputs.values()}
    assert {"simulate", "train", "jaspar_meme", "regions", "attribute", "gather", "bigwig"} <= rules
    assert {"call_motifs", "motifs", "logos", "evaluate", "compare", "report"} <= rules
    for path, (rule, status) in outputs.items():
        assert (run / path).exists(), f"{path} (rule {rule}) is missing"
        assert status == "ok", f"{path} (rule {rule}): {status}"
        if (run / path).is_file() and not path.endswith((".txt", ".bed", ".tsv")):
            assert (run / path).stat().st_size > 0, path
    # every job wrote its log and benchmark
    for rule in ("simulate", "train", "regions", "gather", "bigwig", "call_motifs", "evaluate"):
        logs = list((run / "logs").rglob(f"{rule}.log")) + list((run / "logs").rglob(f"{rule}/*.log"))
        assert logs or rule == "attribute", f"no log of {rule}"
    assert list((run / "logs/benchmarks").rglob("*.tsv"))
    assert "AUROC" in (run / "logs/demo/train.log").read_text()
    training = json.loads((run / "resources/demo/training.json").read_text())
    assert 0 <= training["auroc"]["any"] <= 1

    sizes = _fasta_sizes(run / "resources/demo/genome.fa")
    chrom_sizes = dict(line.split("\t") for line in (run / "results/demo/demo/chrom.sizes").read_text().split("\n") if line)
    assert {k: int(v) for k, v in chrom_sizes.items()} == sizes
    regions = _bed(run / "results/demo/demo/regions.bed")
    length = tiny()["train"]["length"]
    assert regions and all(int(r[2]) - int(r[1]) == length for r in regions)
    assert {r[0] for r in regions} == {tiny()["train"]["test_chrom"]}
    n_shards = int((run / "results/demo/demo/n_shards.txt").read_text())
    assert n_shards == -(-len(regions) // tiny()["attribution"]["shard_size"]) and n_shards >= 2

    for method in methods:
        d = run / "results/demo/demo" / method
        assert len(list((d / "shards").glob("*.npz"))) == n_shards
        rel = np.load(d / "relevance.npy")
        hyp = np.load(d / "hypothetical.npy")
        ohe = np.load(d / "ohe.npy")
        assert rel.shape == hyp.shape == ohe.shape == (len(regions), 4, length)
        assert rel.dtype == np.float32 and np.isfinite(rel).all() and np.isfinite(hyp).all()
        assert set(np.unique(ohe)) <= {0, 1} and (ohe.sum(1) <= 1).all()
        assert np.abs(rel).sum() > 0
        with np.load(d / "relevance.npz") as npz:
            np.testing.assert_array_equal(npz["relevance"], rel)
            np.testing.assert_array_equal(npz["index"], np.arange(len(regions)))
        # LRP with the epsilon rule on the first layer: absent bases get exactly zero relevance
        assert not rel[ohe == 0].any(), method

        # bigWig: the genome's chromosome sizes; every tiled base once; values = projected relevance
        with pyBigWig.open(str(d / "relevance.bw")) as bw:
            assert bw.isBigWig()
            assert bw.chroms() == sizes
            chrom = regions[0][0]
            lo, hi = int(regions[0][1]), int(regions[-1][2])
            values = np.array(bw.values(chrom, lo, hi))
            assert np.isfinite(values).all()
            first = rel[0].sum(0)  # the first window's left half is nobody else's
            np.testing.assert_allclose(values[: length // 4], first[: length // 4], rtol=1e-5, atol=1e-7)

        # calls: sorted BED9 with a track line, TSV with every field, bigBed
        text = (d / "calls.bed").read_text()
        assert text.startswith("track ")
        calls = _bed(d / "calls.bed")
        assert all(len(c) == 9 for c in calls)
        assert calls == sorted(calls, key=lambda c: (c[0], int(c[1]), int(c[2])))
        assert all(0 <= int(c[4]) <= 1000 and c[5] in "+-." for c in calls)
        assert len((d / "calls.tsv").read_text().splitlines()) == len(calls) + 1
        with pyBigWig.open(str(d / "calls.bb")) as bb:
            assert bb.isBigBed()
        assert (d / "motifs.meme").read_text().startswith("MEME version")
        for figure in ("motifs", "sites", "examples"):
            assert (d / "logos" / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert b"<svg" in (d / "logos" / f"{figure}.svg").read_bytes()[:2000]
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics

    table = (run / "results/demo/demo/comparison.tsv").read_text().splitlines()
    assert len(table) >= 1 + len(methods)
    assert all(any(line.startswith(m + "\t") or f"\t{m}\t" in line for line in table) for m in methods)
    html = (run / "results/demo/demo/report.html").read_text()
    assert "<html" in html.lower() and "data:image/png;base64" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)


def test_snakemake_report(local_run):
    """``snakemake --report`` gathers the outputs marked for the report with their captions."""
    result = snakemake(local_run, "--report", str(local_run / "snakemake_report.zip"), config=tiny())
    assert result.returncode == 0, result.stderr[-3000:]
    import zipfile

    with zipfile.ZipFile(local_run / "snakemake_report.zip") as archive:
        names = archive.namelist()
    assert any(n.endswith("report.html") for n in names)
    assert any(n.endswith("comparison.tsv") for n in names)


def test_relevance_is_higher_at_planted_sites(local_run):
    """Per base, the projected relevance inside planted sites beats the background on the held-out chromosome."""
    import pyBigWig

    run = local_run
    regions = _bed(run / "results/demo/demo/regions.bed")
    chrom, lo, hi = regions[0][0], int(regions[0][1]), int(regions[-1][2])
    inside = np.zeros(hi - lo, dtype=bool)
    n_sites = 0
    for site in _bed(run / "resources/demo/known_sites.bed"):
        if site[0] == chrom and int(site[1]) >= lo and int(site[2]) <= hi:
            inside[int(site[1]) - lo : int(site[2]) - lo] = True
            n_sites += 1
    assert n_sites >= 5
    for method in tiny()["methods"]:
        with pyBigWig.open(str(run / "results/demo/demo" / method / "relevance.bw")) as bw:
            values = np.nan_to_num(np.array(bw.values(chrom, lo, hi)))
        at_sites, background = values[inside].mean(), values[~inside].mean()
        assert at_sites > background, (method, at_sites, background)
        # and not by a hair: the mean relevance per base at sites is several times the background's
        assert at_sites > 3 * abs(background), (method, at_sites, background)


def test_same_config_twice_gives_the_same_bytes(local_run, tmp_path):
    _assert_same(local_run, _run(tmp_path / "again"))


def test_cluster_generic_executor_matches_local(local_run, tmp_path):
    submit = REPO / "tests/data/fake_sbatch.sh"
    cluster = _run(
        tmp_path / "cluster",
        "--executor",
        "cluster-generic",
        "--cluster-generic-submit-cmd",
        str(submit),
        "--jobs",
        "2",
        "--latency-wait",
        "5",
        "--seconds-between-status-checks",
        "1",
    )
    # the jobs really ran as separate submissions
    assert len(list((cluster / "logs/cluster").glob("*.out"))) >= 10
    _assert_same(local_run, cluster)
