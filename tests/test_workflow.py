"""End to end: the whole workflow on a tiny demo (simulate, train, regions, attribution in shards, tracks, motif
calls, motifs, logos, evaluation, report), run for real by Snakemake, three times:

- locally in one directory: every declared output exists and is valid; relevance is higher at the planted
  sites than elsewhere;
- locally again in a second directory, killed (SIGKILL) during attribution and resumed: the same bytes;
- through the cluster-generic executor (tests/data/fake_sbatch.sh starts each job as its own background
  process, as sbatch would): the same bytes as the local run.
"""

import contextlib
import csv
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, snakemake, snakemake_command, tiny

from lrp.genomics.store import open_store

pytestmark = pytest.mark.slow

# Every file under resources/ and results/ must be byte-identical between runs of the same config, except
# training.json, which holds the training's wall time. (Figures too: lrp.report.figures fixes the SVG ids and date.)
NOT_COMPARED = ("resources/demo/training.json",)
MUST_EXIST = (  # the files the comparison must at least have covered
    "resources/demo/genome.fa",
    "resources/demo/known_sites.bed",
    "resources/demo/model.pt2",
    "resources/motif_database.meme",
    "results/demo/demo/regions.bed",
    "results/demo/demo/lrp/shards/0.npz",
    "results/demo/demo/lrp/relevance.npz",
    "results/demo/demo/lrp/relevance.npy",
    "results/demo/demo/lrp/hypothetical.npy",
    "results/demo/demo/lrp/relevance.bw",
    "results/demo/demo/lrp/calls.bed",
    "results/demo/demo/lrp/calls.tsv",
    "results/demo/demo/lrp/calls.bb",
    "results/demo/demo/lrp/motifs.meme",
    "results/demo/demo/lrp/metrics.json",
    "results/demo/demo/comparison.tsv",
    "results/demo/demo/report.html",
)


CLUSTER = (
    "--executor",
    "cluster-generic",
    "--cluster-generic-submit-cmd",
    str(REPO / "tests/data/fake_sbatch.sh"),
    "--jobs",
    "2",
    "--latency-wait",
    "5",
    "--seconds-between-status-checks",
    "1",
)
RUNS = {"local": (), "again": (), "cluster": CLUSTER}


def _outputs(paths):
    """Outputs only: pathlib's glob also matches the hidden temporaries (``.NAME.~host~pid~…``) of writers."""
    return [p for p in paths if not p.name.startswith(".")]


def _kill_midway(proc, workdir, log):
    """SIGKILL a run (snakemake and every job it started) as soon as its first attribution shard exists, as a
    dying node would; return what was on disk then: {shard path: loads completely}."""
    first = workdir / "results/demo/demo/lrp/shards"
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        if first.is_dir() and _outputs(first.glob("*.npz")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, (
        "the run ended before it could be killed:\n" + log.read_text()[-3000:]
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    found = {}
    for path in _outputs(workdir.glob("results/demo/demo/*/shards/*.npz")):
        try:
            with np.load(path) as npz:
                found[str(path.relative_to(workdir))] = all(npz[k].size >= 0 for k in npz.files)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            # a partial file: the atomic writes make this impossible
            found[str(path.relative_to(workdir))] = False
    return found


def _stop(procs):
    """SIGKILL every run still going, with all the jobs it started (each run is its own process group)."""
    for proc, *_ in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _start_all(base):
    """Start the three runs at once, each in its own directory, and wait for all of them.

    The "again" run is killed (SIGKILL) during attribution, unlocked and resumed with --rerun-incomplete:
    the resumed run must give the same bytes as the uninterrupted local run.
    Returns {name: (dir, returncode, log)} and what the killed run left on disk.
    """
    procs, out, killed = {}, {}, {}
    with contextlib.ExitStack() as stack:
        stack.callback(_stop, procs)  # on any error or interrupt: no run outlives the tests
        for name, extra in RUNS.items():
            workdir = base / name
            shutil.rmtree(workdir, ignore_errors=True)
            cmd, env = snakemake_command(workdir, "--cores", "2", *extra, config=tiny())
            log = stack.enter_context(open(base / f"{name}.log", "w"))
            procs[name] = (
                subprocess.Popen(
                    cmd, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True
                ),
                cmd,
                env,
                log,
            )
        proc, cmd, env, log = procs["again"]
        killed = _kill_midway(proc, base / "again", base / "again.log")
        unlock = subprocess.run(
            cmd + ["--unlock"], check=False, cwd=REPO, env=env, stdout=log, stderr=log
        )
        assert unlock.returncode == 0
        procs["again"] = (
            subprocess.Popen(
                cmd + ["--rerun-incomplete"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            ),
            cmd,
            env,
            log,
        )
        for name, (proc, *_) in procs.items():
            try:
                rc = proc.wait(timeout=1200)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            out[name] = (base / name, rc, base / f"{name}.log")
    return out, killed


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three runs, made once per test session: pytest-xdist workers share them (a file lock)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder, shared by its workers
    base = base / "plrp_workflow_runs"
    base.mkdir(exist_ok=True)
    with FileLock(str(base / "lock")):
        done = base / "done.json"
        if not done.exists():
            result, killed = _start_all(base)
            state = {k: [str(d), rc, str(log)] for k, (d, rc, log) in result.items()}
            done.write_text(json.dumps({"runs": state, "killed": killed}))
    state = json.loads(done.read_text())
    runs = {k: (Path(d), rc, Path(log)) for k, (d, rc, log) in state["runs"].items()}
    runs["killed"] = state["killed"]
    return runs


def _ok(runs, name):
    workdir, rc, log = runs[name]
    assert rc == 0, f"the {name} run failed ({rc}):\n" + log.read_text()[-6000:]
    return workdir


@pytest.fixture(scope="module")
def local_run(runs):
    return _ok(runs, "local")


def _digests(root):
    """sha256 of every compared file under resources/ and results/ of a run."""
    files = [p for top in ("resources", "results") for p in (root / top).rglob("*") if p.is_file()]
    out = {}
    for path in files:
        name = str(path.relative_to(root))
        if not any(fnmatch.fnmatch(name, pattern) for pattern in NOT_COMPARED):
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# The two files whose bytes depend on where and when a run happened: the IGV session names absolute paths (IGV
# desktop matches tracks to files by absolute path) and the report shows measured attribution times (marked
# class="measured", lrp.report.sections.measured).
MASKED = {
    "results/*/*/hub/igv_session.xml": lambda text, run: text.replace(str(run), "RUN"),
    "results/*/*/report.html": lambda text, run: re.sub(
        r'<span class="measured">.*?</span>', "MEASURED", text
    ),
}


def masked_text(run, name):
    """The text of file ``name`` of a run with its run-specific parts masked, or None where MASKED has none."""
    for pattern, mask in MASKED.items():
        if fnmatch.fnmatch(name, pattern):
            return mask((Path(run) / name).read_text(), Path(run))
    return None


def _assert_same(a, b):
    """Two runs wrote the same files with the same bytes (NOT_COMPARED aside; the files of MASKED with their
    run-specific text masked)."""
    da, db = _digests(a), _digests(b)
    assert set(MUST_EXIST) <= da.keys(), set(MUST_EXIST) - da.keys()
    assert da.keys() == db.keys(), da.keys() ^ db.keys()
    differ = sorted(
        name
        for name in da
        if da[name] != db[name]
        and (masked_text(a, name) is None or masked_text(a, name) != masked_text(b, name))
    )
    assert not differ, f"files differ between {a} and {b}: {differ}"


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
        logs = list((run / "logs").rglob(f"{rule}.log")) + list(
            (run / "logs").rglob(f"{rule}/*.log")
        )
        assert logs or rule == "attribute", f"no log of {rule}"
    assert list((run / "logs/benchmarks").rglob("*.tsv"))
    assert "held-out on" in (run / "logs/demo/train.log").read_text()
    training = json.loads((run / "resources/demo/training.json").read_text())
    assert -1 <= training["heldout"]["profile_pearson_expected"] <= 1

    sizes = _fasta_sizes(run / "resources/demo/genome.fa")
    chrom_sizes = dict(
        line.split("\t")
        for line in (run / "results/demo/demo/chrom.sizes").read_text().split("\n")
        if line
    )
    assert {k: int(v) for k, v in chrom_sizes.items()} == sizes
    regions = _bed(run / "results/demo/demo/regions.bed")
    length = tiny()["train"]["length"]
    assert regions and all(int(r[2]) - int(r[1]) == length for r in regions)
    assert {r[0] for r in regions} == {tiny()["train"]["test_chrom"]}
    n_shards = int((run / "results/demo/demo/n_shards.txt").read_text())
    assert n_shards == -(-len(regions) // tiny()["attribution"]["shard_size"]) and n_shards >= 2

    for method in methods:
        d = run / "results/demo/demo" / method
        assert len(_outputs((d / "shards").glob("*.npz"))) == n_shards
        rel = np.load(d / "relevance.npy")
        hyp = np.load(d / "hypothetical.npy")
        ohe = np.load(d / "ohe.npy")
        assert rel.shape == hyp.shape == ohe.shape == (len(regions), 4, length)
        assert rel.dtype == np.float32 and np.isfinite(rel).all() and np.isfinite(hyp).all()
        assert set(np.unique(ohe)) <= {0, 1} and (ohe.sum(1) <= 1).all()
        assert np.abs(rel).sum() > 0
        store = open_store(d / "relevance.npz")  # the arrays are stored once, as the .npy files
        np.testing.assert_array_equal(np.asarray(store.relevance), rel)
        np.testing.assert_array_equal(store.index, np.arange(len(regions)))
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
            np.testing.assert_allclose(
                values[: length // 4], first[: length // 4], rtol=1e-5, atol=1e-7
            )

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
    assert all(
        any(line.startswith(m + "\t") or f"\t{m}\t" in line for line in table) for m in methods
    )
    # the composite each method ran with is in the table (rules: auto through the workflow: test_auto.py)
    compared = pd.read_csv(run / "results/demo/demo/comparison.tsv", sep="\t").set_index("method")
    assert (compared.loc[methods, "composite"] == "default").all()
    html = (run / "results/demo/demo/report.html").read_text()
    assert "<html" in html.lower() and "data:image/png;base64" in html
    # nothing loads from the network: no external src/href in the page (the inlined igv.js code holds
    # link templates as strings, so script bodies are left out), and no <script src=...>
    page = re.sub(r"(?s)<script[^>]*>.*?</script>", "", html)
    assert not re.search(r"""(src|href)=["']https?://""", page)
    assert not re.search(r"<script[^>]+src=", html)
    assert "igv" in html  # the embedded genome browser


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


def test_killed_run_resumes_to_the_same_bytes(runs):
    """A second run of the same config in another directory, SIGKILLed during attribution and resumed
    (--unlock, --rerun-incomplete): no shard on disk at the kill was partial, and the finished run gives the
    same bytes as the uninterrupted one."""
    killed = runs["killed"]
    assert killed, "nothing was written before the kill"
    assert all(killed.values()), f"partial files after the kill: {killed}"
    _assert_same(_ok(runs, "local"), _ok(runs, "again"))


def test_cluster_generic_executor_matches_local(runs):
    cluster = _ok(runs, "cluster")
    # the jobs really ran as separate submissions
    assert len(list((cluster / "logs/cluster").glob("*.out"))) >= 10
    _assert_same(_ok(runs, "local"), cluster)


def test_own_genome_bed_regions_and_state_dict_model(local_run, tmp_path):
    """Own data: a genome with a BED of regions and a model given as a state dict with its builder and kwargs
    explain the same windows as the demo's .pt2 program does."""
    demo = local_run / "resources/demo"
    meta = json.loads((demo / "model.json").read_text())
    rows = (local_run / "results/demo/demo/regions.bed").read_text().splitlines()[:3]
    (tmp_path / "peaks.bed").write_text("\n".join(rows) + "\n")
    config = {
        "genomes": {
            "sim": {
                "fasta": str(demo / "genome.fa"),
                "known_sites": str(demo / "known_sites.bed"),
                "regions": "peaks.bed",
            }
        },
        "models": {
            "cnn": {
                "path": str(demo / "model_state.pt"),
                "builder": meta["builder"],
                "kwargs": meta["kwargs"],
                "length": meta["length"],
                "target": meta["heads"]["profile"],  # what the demo explains
            }
        },
        "methods": {"lrp": {"method": "lrp"}},
        "motif_database": {"meme": str(local_run / "resources/motif_database.meme")},
        "attribution": {"shard_size": 2, "device": "cpu", "threads": 1},
    }
    result = snakemake(
        tmp_path, "--cores", "2", "results/sim/cnn/lrp/relevance.bw", config=config, timeout=600
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert (tmp_path / "results/sim/cnn/n_shards.txt").read_text().strip() == "2"
    got = np.load(tmp_path / "results/sim/cnn/lrp/relevance.npy")
    want = np.load(local_run / "results/demo/demo/lrp/relevance.npy")[:3]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_make_demo_needs_no_activated_venv(tmp_path):
    """`make demo` on a shell where nothing is activated: the rules still find `plrp` (the venv's bin is put
    first on PATH by the Makefile). Runs the demo's first job only, in a scratch directory."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != bin_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SNAKEMAKE_PROFILE")}
    env["PATH"] = path
    flags = f"--directory {tmp_path} --configfile {REPO / 'config.yaml'} --until simulate"
    done = subprocess.run(
        ["make", "-C", str(REPO), "demo", f"SNAKEFLAGS={flags}"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "resources/demo/genome.fa").stat().st_size > 1_000_000
