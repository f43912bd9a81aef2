"""The workflow on a real one-node SLURM cluster (tests/cluster/slurm_cluster.py: slurmctld, slurmd, slurmdbd
with MariaDB, munge), through Snakemake's SLURM executor plugin and the project's own
workflow/profiles/slurm, its partition and account given by the environment (PLRP_SLURM_*), on a small demo
(:func:`small`: one method in four attribution shards).

The demo's genome, model and motif database are made once, locally, and the same resources/ is copied into
every run's directory: the SLURM runs do not train (the slowest step, and not what this file tests), they run
every step after it (the region table, the check, the attribution shards, tracks, calls, motifs, the
evaluation and the report) as SLURM jobs.

- run 1: one attribution job is scancelled while it runs and another one hangs (SIGSTOP) past the time limit
  it is given (``scontrol update TimeLimit=1``): the run fails cleanly;
- run 2, the README's command again: it resumes (only the missing shards and what needs them are submitted)
  and ends with the bytes of a local run (the same profile, ``--executor local``);
- run 3, at the same time as run 2 in a copy of run 1's directory, ``attribution.device: cuda`` on the
  GPU-less node: the region table again and every attribution shard, each submitted asking for one GPU with
  the profile's CPUs, memory and time (read back from ``sacct``), failing there.

Skipped, with the reason, only where SLURM cannot be installed (not root, no apt-get).
"""

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pytest
from conftest import REPO, snakemake_command, tiny
from test_workflow import _assert_same

sys.path.insert(0, str(Path(__file__).parent / "cluster"))
from slurm_cluster import ACCOUNT, PARTITION, Cluster, install

pytestmark = pytest.mark.slow

PROFILE = REPO / "workflow/profiles/slurm"
# test-speed settings only: the plugin's first status check after 2 s instead of 40 s
FAST = ("--slurm-init-seconds-before-status-checks", "2")
SACCT = "JobIDRaw,JobName,Comment,State,ReqTRES,AllocTRES,Timelimit,Partition,Account,WorkDir"
SEEDED = ("resources/demo/model.pt2", "resources/motif_database.meme")  # made once, locally
SHARDS = "results/demo/demo/lrp/shards"
ATTRIBUTE_LOG = (
    "logs/demo/demo/lrp/attribute/{shard}.log"  # the rule's log: its command has started
)
# the local reference run: the threads a shard gets on SLURM (the profile asks for 4 per attribution shard;
# Snakemake inside the job scales them down to the node's cores), one shard at a time (the profile's
# `jobs: 100` would otherwise be its cores). Relevance is the same bytes for the same thread count; the
# convolutions' reductions are split by thread, so other counts differ in the last bits
SHARD_THREADS = min(4, os.cpu_count() or 1)
LOCAL = ("--cores", str(SHARD_THREADS), "--jobs", str(SHARD_THREADS))
# Two files differ between any two runs by design: the IGV session names its files by absolute path (IGV
# desktop needs that) and the report gives each method's attribution time. They are compared without those.
# one cluster per machine at a time: munge's socket and slurmd's /run/slurm/conf are the machine's
MACHINE_LOCK = Path(tempfile.gettempdir()) / "plrp-test-slurm-cluster.lock"


def small():
    """The tiny demo (conftest.tiny) with one method, a shorter training and no faithfulness curves:
    74 windows in 4 attribution shards."""
    config = tiny()
    config["train"].update(epochs=2, windows_per_epoch=2048)
    config["methods"] = {"lrp": config["methods"]["lrp"]}
    config["evaluation"] = {"faithfulness": False}
    config["attribution"]["shard_size"] = 20
    return config


def _sacct(cluster):
    """Every job this cluster ran: a list of {SACCT field: value}."""
    out = cluster.run(
        "sacct", "-X", "-a", "--parsable2", "--noheader", "--starttime", "now-2days",
        f"--format={SACCT}",
    )  # fmt: skip
    names = SACCT.split(",")
    return [dict(zip(names, line.split("|"), strict=True)) for line in out.splitlines() if line]


def _squeue(cluster):
    """{job id: (comment, state)} of the jobs SLURM holds now."""
    out = cluster.run("squeue", "-h", "-a", "-t", "all", "-o", "%i|%k|%T")
    rows = (line.split("|") for line in out.splitlines() if line)
    return {job: (comment, state) for job, comment, state in rows}


def _job_pids(cluster, job):
    ok, out = cluster.ok("scontrol", "listpids", job)
    return [int(line.split()[0]) for line in out.splitlines()[1:] if line.split()] if ok else []


def _faults(cluster, workdir, proc, log):
    """While run 1 goes: scancel the first attribution job seen running its ``plrp attribute`` (its rule log
    exists); freeze the second one (SIGSTOP every process of it) and cut its time limit to 1 minute. A job
    that ends before either is done to it is passed over. Returns {"cancelled": id, "timed_out": id}."""
    done, passed = {}, set()
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and len(done) < 2:
        running = [
            job
            for job, (comment, state) in _squeue(cluster).items()
            if comment.startswith("rule_attribute") and state == "RUNNING"
            and job not in done.values() and job not in passed
            and (workdir / ATTRIBUTE_LOG.format(shard=comment.rsplit("_", 1)[1])).exists()
        ]  # fmt: skip
        if running and "cancelled" not in done:
            if cluster.ok("scancel", running[0])[0]:
                done["cancelled"] = running[0]
            passed.add(running[0])
        elif running:
            job = running[0]
            for _ in range(3):  # again: a process may have been started meanwhile
                for pid in _job_pids(cluster, job):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                time.sleep(0.5)
            if cluster.ok("scontrol", "update", f"JobId={job}", "TimeLimit=1")[0]:
                done["timed_out"] = job
            passed.add(job)
        time.sleep(0.3)
    assert len(done) == 2, (
        f"two attribution jobs were not seen running: {done}\n" + log.read_text()[-4000:]
    )
    return done


def _run_id(log_text):
    """The plugin's run id (the SLURM job name of every job of that run) of each run in a log, in order."""
    return re.findall(r"SLURM run ID: (\S+)", log_text)


def _outputs(paths):
    """Outputs only, not the hidden temporaries (``.NAME.~host~pid~…``) of writers."""
    return sorted(str(p.name) for p in paths if not p.name.startswith("."))


def _runs(base, cluster):
    """The seeding run, the local reference run and SLURM runs 1 to 3 (see the module docstring), on a
    cluster that this starts; returns a JSON-able record."""
    env_extra = {
        "SLURM_CONF": str(cluster.conf),
        "PLRP_SLURM_PARTITION": PARTITION,
        "PLRP_SLURM_GPU_PARTITION": PARTITION,
        "PLRP_SLURM_ACCOUNT": ACCOUNT,
    }
    procs = []

    def popen(name, *args, config=None):
        cmd, env = snakemake_command(base / name, *args, config=config or small())
        log = open(base / f"{name}.log", "a")  # noqa: SIM115 - closed by wait()
        proc = subprocess.Popen(
            cmd, cwd=REPO, env={**env, **env_extra}, stdout=log, stderr=log, start_new_session=True
        )
        procs.append(proc)
        return proc, log

    def wait(proc, log, timeout):
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout"
        finally:
            log.close()

    record = {}
    try:
        seed = popen("seed", "--cores", "2", *SEEDED)  # while the cluster starts
        cluster.start()
        rc = wait(*seed, 600)
        assert rc == 0, (
            f"the seeding run failed ({rc}):\n" + (base / "seed.log").read_text()[-4000:]
        )
        for name in ("local", "slurm"):  # copy2: the seeded files keep their times, nothing reruns
            shutil.copytree(base / "seed/resources", base / name / "resources")
        local = popen("local", "--profile", str(PROFILE), "--executor", "local", *LOCAL)
        run1 = popen("slurm", "--profile", str(PROFILE), *FAST)
        record["faults"] = _faults(cluster, base / "slurm", *run1)
        record["run1"] = wait(*run1, 600)
        record["shards_after_run1"] = _outputs((base / "slurm" / SHARDS).glob("*.npz"))
        # run 3 in a copy of run 1's directory: the region table again, then every shard with device cuda
        cuda = base / "cuda"
        shutil.copytree(base / "slurm", cuda, ignore=shutil.ignore_patterns("slurm_logs", "locks"))
        with open(cuda / "results/demo/demo/regions.bed") as f:
            n_shards = math.ceil(sum(1 for _ in f) / small()["attribution"]["shard_size"])
        record["n_shards"] = n_shards
        config = small()
        config["attribution"]["device"] = "cuda"
        targets = [f"{SHARDS}/{i}.npz" for i in range(n_shards)]
        run3 = popen("cuda", "--profile", str(PROFILE), *FAST, "--forcerun", "regions", *targets,
                     config=config)  # fmt: skip
        run2 = popen("slurm", "--profile", str(PROFILE), *FAST)
        record["run2"] = wait(*run2, 600)
        record["run3"] = wait(*run3, 300)
        record["local"] = wait(*local, 300)
        record["sacct"] = _sacct(cluster)
    finally:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        cluster.stop()
    return record


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The runs, made once per test session on one cluster: pytest-xdist workers share them (a file lock).
    An error while making them is recorded and reported by every test, never retried by a second worker."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder, shared by its workers
    base = base / "plrp_slurm_runs"
    base.mkdir(exist_ok=True)
    with FileLock(str(base / "lock")):
        done = base / "done.json"
        if not done.exists():
            reason = install()
            if reason:
                record = {"skip": f"SLURM cannot be installed here: {reason}"}
            else:
                with FileLock(str(MACHINE_LOCK)):
                    try:
                        record = _runs(base, Cluster(base / "cluster"))
                    except Exception:  # noqa: BLE001 - recorded, reported by every test
                        record = {"error": traceback.format_exc()}
            done.write_text(json.dumps(record))
    record = json.loads(done.read_text())
    if "skip" in record:
        pytest.skip(record["skip"])
    if "error" in record:
        pytest.fail(f"the SLURM runs could not be made:\n{record['error']}", pytrace=False)
    record["base"] = base
    return record


def _log(slurm, name):
    return (slurm["base"] / f"{name}.log").read_text()


def _jobs(slurm, run_id):
    """sacct's rows of one run's jobs, with the rule taken from the comment the plugin gives each job."""
    rows = [dict(r) for r in slurm["sacct"] if r["JobName"] == run_id]
    for r in rows:
        r["rule"] = re.match(r"rule_([a-z_]+?)(_wildcards_|$)", r["Comment"]).group(1)
    return rows


def _tres(text):
    return dict(item.split("=", 1) for item in text.split(",") if item)


def test_faulted_run_fails_cleanly(slurm):
    log = _log(slurm, "slurm")
    assert slurm["run1"] not in (0, "timeout"), log[-4000:]
    run1 = _run_id(log)[0]
    states = {r["JobIDRaw"]: r["State"] for r in _jobs(slurm, run1)}
    assert states[slurm["faults"]["cancelled"]].startswith("CANCELLED"), states
    assert states[slurm["faults"]["timed_out"]] == "TIMEOUT", states
    first = log.split("SLURM run ID:")[1]
    for job in slurm["faults"].values():
        assert f"SLURM-job '{job}' failed" in first, first[-4000:]
    # neither killed job left its shard (partial or whole); every other shard was made (keep-going)
    assert slurm["n_shards"] >= 3
    assert len(slurm["shards_after_run1"]) == slurm["n_shards"] - 2, slurm["shards_after_run1"]
    # the plugin keeps the SLURM log of a failed job, under .snakemake/slurm_logs/rule_attribute/
    logs = list((slurm["base"] / "slurm/.snakemake/slurm_logs/rule_attribute").rglob("*.log"))
    assert {p.stem for p in logs} >= set(slurm["faults"].values()), logs


def test_resumed_run_matches_a_local_run(slurm):
    log = _log(slurm, "slurm")
    assert slurm["run2"] == 0, log[-6000:]
    assert slurm["local"] == 0, _log(slurm, "local")[-6000:]
    run1, run2 = _run_id(log)
    first = [r["rule"] for r in _jobs(slurm, run1)]
    assert first.count("attribute") == slurm["n_shards"], first
    assert {"regions", "check"} <= set(first), first
    assert not {"simulate", "train", "jaspar_meme"} & set(first), first  # seeded, not rerun
    # the rerun submitted only the two lost shards and what depends on them, nothing upstream
    resumed = _jobs(slurm, run2)
    rules = [r["rule"] for r in resumed]
    assert rules.count("attribute") == 2, rules
    assert not {"simulate", "train", "regions", "check", "jaspar_meme"} & set(rules), rules
    assert {"gather", "bigwig", "call_motifs", "report"} <= set(rules), rules
    assert all(r["State"] == "COMPLETED" for r in resumed), resumed
    _assert_same(slurm["base"] / "local", slurm["base"] / "slurm")


def test_resources_at_the_scheduler(slurm):
    """Read back from sacct: partition and account from the environment, the profile's memory and time, CPUs
    from the threads; a GPU (with cpus_per_gpu CPUs) only for attribution shards with device cuda."""
    log = _log(slurm, "slurm")
    rows = _jobs(slurm, _run_id(log)[0]) + _jobs(slurm, _run_id(log)[1])
    assert {r["rule"] for r in rows} >= {"attribute", "gather", "call_motifs", "report"}, rows
    want_mem = {"attribute": "32000M", "gather": "16000M", "call_motifs": "16000M"}
    want_time = {"attribute": "02:00:00", "gather": "01:00:00", "report": "00:10:00"}
    for r in rows:
        req, alloc = _tres(r["ReqTRES"]), _tres(r["AllocTRES"])
        assert r["Partition"] == PARTITION and r["Account"] == ACCOUNT, r
        # device cpu: no rule asks for a GPU
        assert "gres/gpu" not in req and "gres/gpu" not in alloc, r
        if r["rule"] in want_mem:
            assert req["mem"] == want_mem[r["rule"]], r
        if r["rule"] in want_time and r["JobIDRaw"] != slurm["faults"]["timed_out"]:  # cut to 1 min
            assert r["Timelimit"] == want_time[r["rule"]], r
        if r["rule"] == "attribute" and alloc:
            assert alloc["cpu"] == "4", r  # set-threads: 4 -> --cpus-per-task=4

    assert slurm["run3"] not in (0, "timeout"), _log(slurm, "cuda")[-4000:]
    cuda = _jobs(slurm, _run_id(_log(slurm, "cuda"))[0])
    shards = [r for r in cuda if r["rule"] == "attribute"]
    assert len(shards) == slurm["n_shards"], cuda
    # the rules that explain windows on the device: the shards and the calls' shuffled null (default on)
    explaining = [r for r in cuda if r["rule"] in ("attribute", "null_relevance")]
    assert len(explaining) > len(shards), cuda
    for r in explaining:
        req, alloc = _tres(r["ReqTRES"]), _tres(r["AllocTRES"])
        assert req["gres/gpu"] == "1" and alloc["gres/gpu"] == "1", r  # --gpus=1
        assert alloc["cpu"] == "4", r  # cpus_per_gpu: 4
        assert req["mem"] == "32000M" and r["Timelimit"] == "02:00:00", r
        assert r["State"] == "FAILED", r  # there is no CUDA behind the node's GPU
    others = [r for r in cuda if r not in explaining]
    assert [r["rule"] for r in others] == ["regions"], cuda
    assert all("gres/gpu" not in _tres(r["ReqTRES"] + "," + r["AllocTRES"]) for r in others)
