"""The workflow's configuration: the shipped config dry-runs, own data builds the right DAG, and a bad config
is refused before anything runs with one message that names the key."""

import copy
import re
import shutil
import subprocess

import pytest
from conftest import BIN, REPO, snakemake


def _own_data(tmp_path, **extra):
    """A config for two genomes and two models on stub files (a dry run never reads them)."""
    for name in ("a.fa", "b.fa", "a_sites.bed", "peaks.bed", "m1.pt2", "m2_state.pt", "arch.py"):
        (tmp_path / name).write_text(">chr1\nACGT\n" if name.endswith(".fa") else "stub\n")
    config = {
        "genomes": {
            "ga": {
                "fasta": "a.fa",
                "known_sites": "a_sites.bed",
                "regions": {"tile": {"step": 100, "chroms": ["chr1"]}},
            },
            "gb": {"fasta": "b.fa", "regions": "peaks.bed"},
        },
        "models": {
            "m1": {"path": "m1.pt2", "length": 200},
            "m2": {
                "path": "m2_state.pt",
                "builder": "arch.py:build",
                "kwargs": {"width": 8},
                "length": 100,
                "alphabet": "TGCA",
                "target": {"output": "profile", "index": 1, "reduction": "profile"},
                "genomes": ["gb"],
            },
        },
        "methods": {
            "lrp": {"method": "lrp"},
            "plrp-lambda-0.25": {"method": "plrp-lambda", "p_pos": 0.25},
            "gradient-x-input": {"method": "gradient-x-input"},
        },
        "motif_database": {"meme": "a_sites.bed"},
    }
    config.update(extra)
    return config


def _jobs(stdout):
    """Job counts from a dry run's job table: {rule: count}."""
    table = stdout.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def test_default_config_dry_run(tmp_path):
    """The shipped config.yaml (the embedded demo) dry-runs with no edits."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = snakemake(tmp_path, "-n", "--cores", "2")
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = _jobs(result.stdout)
    assert jobs["simulate"] == jobs["train"] == jobs["jaspar_meme"] == jobs["regions"] == 1
    # lrp, plrp-lambda at 0.1/0.25/0.5, plrp-m, gradient-x-input, deeplift-shap
    for rule in ("gather", "bigwig", "call_motifs", "motifs", "logos", "evaluate"):
        assert jobs[rule] == 7, (rule, jobs)
    assert jobs["report"] == jobs["hub"] == jobs["compare"] == 1
    assert "results/demo/demo/plrp-lambda-0.25/relevance.bw" in result.stdout


def test_local_and_slurm_profiles_dry_run(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    local = snakemake(tmp_path, "-n", "--profile", str(REPO / "workflow/profiles/local"))
    assert local.returncode == 0, local.stderr + local.stdout
    # the SLURM executor plugin needs no sbatch for a dry run
    slurm = snakemake(tmp_path, "-n", "--profile", str(REPO / "workflow/profiles/slurm"))
    assert slurm.returncode == 0, slurm.stderr + slurm.stdout
    assert "slurm_partition" in slurm.stdout or "rule simulate" in slurm.stdout


def test_own_data_dag(tmp_path):
    """Genomes, models and methods are wildcards of one DAG; a model explains only its genomes."""
    result = snakemake(tmp_path, "-n", "--cores", "2", config=_own_data(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = _jobs(result.stdout)
    assert "simulate" not in jobs and "train" not in jobs and "jaspar_meme" not in jobs
    # pairs: (ga, m1), (gb, m1), (gb, m2); three methods each
    assert jobs["regions"] == 3
    assert jobs["gather"] == jobs["bigwig"] == jobs["evaluate"] == 9
    assert jobs["report"] == jobs["hub"] == 3
    assert "results/gb/m2/gradient-x-input/relevance.bw" in result.stdout
    assert "results/ga/m2/" not in result.stdout


def test_cuda_device_asks_for_a_gpu(tmp_path):
    """With device cuda every attribution shard asks for gpu=1 (SLURM: --gpus=1; locally a counted resource)."""
    rng = __import__("random").Random(0)
    (tmp_path / "g.fa").write_text(
        ">chr1\n" + "".join(rng.choice("ACGT") for _ in range(3000)) + "\n"
    )
    (tmp_path / "m.pt2").write_text("stub\n")
    config = {
        "genomes": {"g": {"fasta": "g.fa", "regions": {"tile": {"step": 500}}}},
        "models": {"m": {"path": "m.pt2", "length": 1000}},
        "methods": {"lrp": {"method": "lrp"}},
        "motif_database": {"meme": "m.pt2"},
        "attribution": {"device": "cuda", "shard_size": 2},
    }
    # run the region table (a checkpoint) for real, then the dry run shows the shards
    regions = snakemake(tmp_path, "--cores", "1", "--until", "regions", config=config)
    assert regions.returncode == 0, regions.stderr + regions.stdout
    assert (
        tmp_path / "results/g/m/n_shards.txt"
    ).read_text().strip() == "3"  # 5 tiles, 2 per shard
    result = snakemake(tmp_path, "-n", "--cores", "1", config=config)
    assert result.returncode == 0, result.stderr + result.stdout
    blocks = re.split(r"\n(?=\[\w{3} \w{3} )|\nJob stats:", result.stdout)
    shards = [b for b in blocks if "rule attribute:" in b]
    assert len(shards) == 3
    assert all(re.search(r"resources: .*\bgpu=1\b", b) for b in shards), shards[0]
    cpu = snakemake(
        tmp_path, "-n", "--cores", "1", config={**config, "attribution": {"device": "cpu"}}
    )
    assert cpu.returncode == 0
    assert not re.search(r"\bgpu=1\b", cpu.stdout)


def test_demo_on_beside_own_data(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "2", config=_own_data(tmp_path, demo=True))
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = _jobs(result.stdout)
    assert jobs["simulate"] == jobs["train"] == 1
    assert jobs["regions"] == 4  # the demo genome with the demo model, and the three pairs above
    assert "results/demo/demo/lrp/relevance.bw" in result.stdout
    assert "results/ga/demo/" not in result.stdout and "results/demo/m1/" not in result.stdout


def _set(config, path, value):
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


BAD = [
    # (keys to set, value, what the message must name)
    (["colour"], "blue", "colour"),
    (["attribution", "shardsize"], 10, "attribution.shardsize"),
    (["attribution", "batch_size"], "large", "attribution.batch_size"),
    (["attribution", "device"], "tpu", "attribution.device"),
    (["seed"], -1, "seed"),
    (["methods", "plrp-lambda-0.25", "p_pos"], 1.0, "methods.plrp-lambda-0.25.p_pos"),
    (["methods", "plrp-lambda-0.25", "p_neg"], -0.1, "methods.plrp-lambda-0.25.p_neg"),
    (["methods", "plrp-lambda-0.25", "p_pos"], "0.2", "methods.plrp-lambda-0.25.p_pos"),
    (["methods", "ig", "method"], "integrated-gradients", "methods.ig.method"),
    (["methods", "lrp", "p_pos"], 0.2, "methods.lrp.p_pos"),
    (["methods", "lrp", "rules", "conv"], "alpha-beta", "methods.lrp.rules.conv"),
    (["methods", "lrp", "window"], 5, "methods.lrp.window"),
    (["methods", "bad/name"], {"method": "lrp"}, "methods"),
    (["genomes", "ga", "fasta"], "missing.fa", "genomes.ga.fasta"),
    (["genomes", "ga", "regions"], {"tile": {"step": 0}}, "genomes.ga.regions.tile.step"),
    (["genomes", "gb", "known_sites"], "nope.bed", "genomes.gb.known_sites"),
    (["models", "m1", "path"], "missing.pt2", "models.m1.path"),
    (["models", "m1", "alphabet"], "ACGG", "models.m1.alphabet"),
    (["models", "m1", "length"], 0, "models.m1.length"),
    (["models", "m1", "target", "reduction"], "mean", "models.m1.target.reduction"),
    (["models", "m1", "trust_pickle"], "yes", "models.m1.trust_pickle"),
    (["models", "m2", "genomes"], ["gc"], "models.m2.genomes"),
    (["models", "m2", "builder"], "missing.py:build", "models.m2.builder"),
    (["motif_database", "meme"], "missing.meme", "motif_database.meme"),
    (["methods", "dls"], {"method": "deeplift-shap"}, "models.m1.path"),
    (["motif_database", "jaspar"], {"relase": "JASPAR2024"}, "motif_database.jaspar.relase"),
]


@pytest.mark.parametrize("path, value, key", BAD, ids=[".".join(b[0]) for b in BAD])
def test_bad_config_names_the_key(tmp_path, path, value, key):
    config = _own_data(tmp_path)
    _set(config, path, value)
    result = snakemake(tmp_path, "-n", "--cores", "1", config=config)
    assert result.returncode != 0
    lines = [line for line in (result.stderr + result.stdout).splitlines() if "config: " in line]
    assert lines, result.stderr + result.stdout
    assert key in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_no_data_and_demo_off_is_an_error(tmp_path):
    config = copy.deepcopy(_own_data(tmp_path))
    config.update(demo=False, genomes={}, models={})
    result = snakemake(tmp_path, "-n", "--cores", "1", config=config)
    assert result.returncode != 0
    assert "config: genomes: no genome is configured" in result.stderr + result.stdout


def test_lint_and_format():
    lint = subprocess.run(
        [str(BIN / "snakemake"), "--lint", "-n"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0 and "good condition" in lint.stdout + lint.stderr, lint.stdout
    fmt = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/rules"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr
