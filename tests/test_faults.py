"""Faults: a job killed in the middle leaves no partial output and the rerun finishes with the same result as an
uninterrupted run; shards written at once (and two writers of one output) are safe.

``plrp gather`` killed mid-write is tested in tests/test_gather.py; here ``plrp attribute`` and the workflow.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import BIN, REPO, SNAKEFILE

L = 200
KWARGS = {"n_tasks": 2, "length": L, "filters": 4}
SHARD = 6


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A genome of 2 x 1400 bp, its region table (28 windows of 200 bp, step 100) and a .pt2 model."""
    import torch

    from lrp.demo.model import build_model
    from lrp.demo.train import export

    d = tmp_path_factory.mktemp("fault_inputs")
    rng = np.random.default_rng(3)
    with open(d / "g.fa", "w") as handle:
        for name in ("chr1", "chr2"):
            seq = "".join(rng.choice(list("ACGT"), 1400))
            handle.write(f">{name}\n" + "".join(seq[i : i + 70] + "\n" for i in range(0, 1400, 70)))
    rows = [(c, s, s + L) for c in ("chr1", "chr2") for s in range(0, 1400 - L + 1, 100)]
    (d / "regions.bed").write_text(
        "".join(f"{c}\t{s}\t{e}\t{c}:{s}-{e}\t0\t.\n" for c, s, e in rows)
    )
    torch.export.save(export(build_model(**KWARGS, seed=0).eval(), L), d / "model.pt2")
    # a real motif database: rule check reads it before any attribution
    from lrp.motifs.database import write_meme

    write_meme(d / "meme.txt", {f"TF{i}": rng.dirichlet(np.ones(4), 8).T for i in range(3)})
    return d


def _attribute(d, shard, out):
    return [
        "attribute", "--fasta", str(d / "g.fa"), "--regions", str(d / "regions.bed"),
        "--model", str(d / "model.pt2"), "--length", str(L), "--method", "plrp-lambda",
        "--target", '{"index": 0}', "--shard", str(shard), "--shard-size", str(SHARD),
        "--batch-size", "4", "--threads", "1", "--seed", "0", "--out", str(out),
    ]  # fmt: skip


def _plrp(argv):
    return subprocess.run(
        [str(BIN / "plrp"), *argv], check=False, capture_output=True, text=True, timeout=300
    )


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _assert_same_arrays(a, b):
    a, b = _arrays(a), _arrays(b)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _hidden(folder):
    """Hidden files and folders (temporaries) under ``folder``, Snakemake's own aside."""
    return sorted(p.name for p in Path(folder).rglob(".*") if ".snakemake" not in p.parts)


# The real command, slowed at the moment it writes the shard: half of the archive is written, then it waits
# to be killed.
HALF_WRITE = """
import io, sys, time
import numpy as np
from lrp.steps.cli import main

_savez = np.savez

def half(file, *args, **kwargs):
    buf = io.BytesIO()
    _savez(buf, *args, **kwargs)
    data = buf.getvalue()
    file.write(data[: len(data) // 2])
    file.flush()
    print("writing", flush=True)
    time.sleep(300)

np.savez = half
sys.exit(main(sys.argv[1:]))
"""


def test_attribute_killed_mid_write_leaves_no_output_and_reruns(inputs, tmp_path):
    out = tmp_path / "shards" / "1.npz"
    proc = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITE, *_attribute(inputs, 1, out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    # only the hidden temporary of the atomic write is left, half written ...
    (temp,) = _hidden(out.parent)
    assert temp.startswith(".1.~") and temp.endswith(".npz")
    # ... and the rerun writes the whole shard and removes the dead writer's temporary
    rerun = _plrp(_attribute(inputs, 1, out))
    assert rerun.returncode == 0, rerun.stderr
    assert _hidden(out.parent) == []
    z = _arrays(out)
    assert z["relevance"].shape == (SHARD, 4, L)
    assert z["index"].tolist() == list(range(SHARD, 2 * SHARD))
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_concurrent_shards_and_two_writers_of_one_output(inputs, tmp_path):
    """Shards 0 and 1 written at once into one folder, shard 0 twice at once (two writers of one output), and
    shard 0 alone elsewhere: every file is whole, and the doubly written one equals the lone one."""
    shared, alone = tmp_path / "shards", tmp_path / "alone"
    jobs = [
        _attribute(inputs, 0, shared / "0.npz"),
        _attribute(inputs, 1, shared / "1.npz"),
        _attribute(inputs, 0, shared / "0.npz"),
        _attribute(inputs, 0, alone / "0.npz"),
    ]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(_plrp, jobs))
    for result in results:
        assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(shared)) == ["0.npz", "1.npz"]  # no temporaries left
    _assert_same_arrays(shared / "0.npz", alone / "0.npz")
    assert _arrays(shared / "1.npz")["index"].tolist() == list(range(SHARD, 2 * SHARD))


# ------------------------------------------------------------------------------------------ the workflow
TARGETS = ["results/g/m/lrp/relevance.bw"]


def _workflow_config(d):
    return {
        "seed": 0,
        "genomes": {"g": {"fasta": str(d / "g.fa"), "regions": {"tile": {"step": 100}}}},
        "models": {"m": {"path": str(d / "model.pt2"), "length": L, "target": {"index": 0}}},
        "methods": {"lrp": {"method": "lrp"}},
        "motif_database": {"meme": str(d / "meme.txt")},
        "attribution": {"shard_size": SHARD, "batch_size": 4, "device": "cpu", "threads": 1},
    }


def _snakemake_cmd(workdir, config, *args, targets=TARGETS):
    path = Path(workdir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [
        str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
        "--configfile", str(path), "--replace-workflow-config", "--cores", "1", *args, *targets,
    ]  # fmt: skip


def _env():
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _snakemake(workdir, config, *args, targets=TARGETS, timeout=600):
    return subprocess.run(
        _snakemake_cmd(workdir, config, *args, targets=targets),
        check=False,
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_call_motifs_killed_leaves_no_temporaries_beside_its_outputs(inputs, tmp_path):
    """bedtools' temporaries live in the job's TMPDIR: a SIGKILL leaves nothing in the results folder."""
    out = tmp_path / "results"
    shard = tmp_path / "all.npz"
    argv = _attribute(inputs, 0, shard)
    argv[argv.index("--shard-size") + 1] = "0"  # one shard of every region
    result = _plrp(argv)
    assert result.returncode == 0, result.stderr
    gathered = _plrp(
        ["gather", "--shards", str(shard), "--regions", str(inputs / "regions.bed"),
         "--out-dir", str(out)]
    )  # fmt: skip
    assert gathered.returncode == 0, gathered.stderr
    before = sorted(p.name for p in out.iterdir())
    job_tmp = tmp_path / "job_tmp"
    job_tmp.mkdir()
    proc = subprocess.Popen(
        [str(BIN / "plrp"), "call-motifs", "--relevance", str(out / "relevance.npz"),
         "--regions", str(inputs / "regions.bed"), "--motif-db", str(inputs / "meme.txt"),
         "--fasta", str(inputs / "g.fa"), "--out-bed", str(out / "calls.bed"),
         "--out-tsv", str(out / "calls.tsv"), "--threads", "1", "--fdr", "1"],
        env=dict(os.environ, TMPDIR=str(job_tmp)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        # Other libraries may put their own files in TMPDIR too (matplotlib's config dir where HOME is
        # read-only): wait for ours.
        while not any(p.name.startswith("plrp-bedtools.") for p in job_tmp.iterdir()):
            assert proc.poll() is None, "call-motifs ended before its temporaries appeared"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ours = [p.name for p in job_tmp.iterdir() if p.name.startswith("plrp-")]
    assert len(ours) == 1 and ours[0].startswith("plrp-bedtools."), ours
    assert sorted(p.name for p in out.iterdir()) == before  # no call file, no hidden folder


# The steps a kill is tried at, each by the log its job opens: the rerun must resume from there.
KILL_STEPS = (
    "logs/g/m/lrp/attribute/1.log",
    "logs/g/m/lrp/gather.log",
    "logs/g/m/lrp/call_motifs.log",
    "logs/g/m/report.log",
)
REPORT = "results/g/m/report.html"


def _kill_when(workdir, config, marker, timeout=600):
    """Start the workflow towards the report and SIGKILL Snakemake and its jobs once ``marker`` exists."""
    log = Path(workdir).parent / f"{Path(workdir).name}.snakemake.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            _snakemake_cmd(workdir, config, "--rerun-incomplete", targets=[REPORT]),
            cwd=REPO,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not (Path(workdir) / marker).exists():
            assert proc.poll() is None, (
                f"snakemake ended before {marker}: {log.read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, f"no {marker} after {timeout} s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tree(root):
    """Every file under ``results/`` of a run: {relative path: sha256}, run-specific text masked."""
    from test_workflow import masked_text

    out = {}
    for path in sorted((Path(root) / "results").rglob("*")):
        if path.is_file():
            name = str(path.relative_to(root))
            text = masked_text(root, name)
            data = path.read_bytes() if text is None else text.encode()
            out[name] = hashlib.sha256(data).hexdigest()
    return out


def test_killed_at_each_step_then_rerun_gives_a_clean_runs_files(inputs, tmp_path):
    """SIGKILL the run as the second attribution shard, gather, call-motifs and the report start, each time resuming as the README says
    (--unlock, then the same command): the results are the files of an uninterrupted run, byte for byte,
    and nothing else (no temporary, no half-written file)."""
    config = _workflow_config(inputs)
    sites = tmp_path / "sites.bed"  # the report needs the evaluation, which needs known sites
    sites.write_text("chr1\t300\t310\tTF0\t0\t+\nchr2\t700\t710\tTF1\t0\t-\n")
    config["genomes"]["g"]["known_sites"] = str(sites)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    for marker in KILL_STEPS:
        _kill_when(killed, config, marker)
        assert not (killed / REPORT).exists(), marker
        unlock = _snakemake(killed, config, "--unlock")
        assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = _snakemake(killed, config, "--rerun-incomplete", targets=[REPORT], timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    clean = _snakemake(whole, config, targets=[REPORT], timeout=900)
    assert clean.returncode == 0, clean.stderr[-3000:]
    a, b = _tree(killed), _tree(whole)
    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())
    assert [n for n in a if a[n] != b[n]] == []
    assert _hidden(killed / "results") == []
