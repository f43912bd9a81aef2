"""The workflow's configuration: the shipped config dry-runs, own data builds the right DAG, and a bad config
is refused before anything runs with one message that names the key."""

import copy
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig

import pytest
import yaml
from conftest import BIN, REPO, demo_config, snakemake

from lrp.engine.methods import AUTO, METHODS, P_RANGE, check_params, method_names

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
EVERY_KEY = REPO / "tests/config_every_key.yaml"
# motif_database.meme excludes motif_database.jaspar: the every-key config is dry-run again with this instead
MEME_INSTEAD = {"meme": "data/motifs.meme"}


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
    """With device cuda every attribution shard asks for gpu=1 (SLURM: --gpus=1; locally a counted resource),
    and so does choose_params (rules: auto); the SLURM profile gives every job that asks for a GPU the shards'
    partition, CPUs, memory, time and threads."""
    rng = random.Random(0)
    (tmp_path / "g.fa").write_text(
        ">chr1\n" + "".join(rng.choice("ACGT") for _ in range(3000)) + "\n"
    )
    (tmp_path / "m.pt2").write_text("stub\n")
    config = {
        "genomes": {"g": {"fasta": "g.fa", "regions": {"tile": {"step": 500}}}},
        "models": {"m": {"path": "m.pt2", "length": 1000}},
        "methods": {"lrp": {"method": "lrp", "rules": "auto"}},
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
    chooses = [b for b in blocks if "rule choose_params:" in b]
    assert len(chooses) == 1 and re.search(r"resources: .*\bgpu=1\b", chooses[0]), chooses
    # SLURM: every job that asks for a GPU asks as a shard does (a GPU in the CPU partition is refused)
    profile = REPO / "workflow/profiles/slurm"
    env = {"PLRP_SLURM_PARTITION": "cpu-part", "PLRP_SLURM_GPU_PARTITION": "gpu-part"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        slurm = snakemake(tmp_path, "-n", "--profile", str(profile), config=config)
    assert slurm.returncode == 0, slurm.stderr + slurm.stdout
    asks = {}  # rule -> the resources of its jobs that ask for a GPU
    for block in re.split(r"\n(?=\[\w{3} \w{3} )|\nJob stats:", slurm.stdout):
        rule, resources = re.search(r"rule (\w+):", block), re.search(r"resources: (.*)", block)
        if rule and resources and re.search(r"\bgpu=1\b", resources[1]):
            asks.setdefault(rule[1], []).append(sorted(resources[1].split(", ")))
    assert {"attribute", "choose_params"} <= set(asks), asks  # and any other rule that explains
    shard = asks["attribute"][0]
    assert "slurm_partition=gpu-part" in shard and "cpus_per_gpu=4" in shard, shard
    for rule, jobs in asks.items():
        assert all(job == shard for job in jobs), (rule, jobs, shard)
    threads = yaml.safe_load((profile / "config.yaml").read_text())["set-threads"]
    assert {threads.get(rule) for rule in asks} == {threads["attribute"]}, threads
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
    (["methods", "gradient-x-input", "rules"], {"conv": "zplus"}, "methods.gradient-x-input.rules"),
    (["methods", "lrp", "n_shuffles"], 5, "methods.lrp.n_shuffles"),
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


def test_parsing_needs_neither_the_installed_package_nor_torch(tmp_path):
    """The workflow parses where lrp is not installed and imports no torch: config.smk imports
    lrp.engine.methods, lrp.demo.spec, lrp.motifs.defaults and lrp.report.outputs (standard library only) from the checkout, which Snakemake puts first on sys.path.
    Python runs with -S, so the editable install's .pth file is not read."""
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    python = [sys.executable, "-S"]
    found = subprocess.run(
        [*python, "-c", "import importlib.util; print(importlib.util.find_spec('lrp'))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "None"  # the package is not importable here
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    dry = subprocess.run(
        [*python, "-X", "importtime", "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile")],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    imported = set(re.findall(r"^import time:.*\|\s+([\w.]+)$", dry.stderr, re.MULTILINE))
    assert "torch" not in imported
    assert {m for m in imported if m.split(".")[0] == "lrp"} == {
        "lrp",
        "lrp.core",
        "lrp.core.errors",
        "lrp.engine",
        "lrp.engine.methods",
        "lrp.demo",
        "lrp.demo.spec",
        "lrp.motifs",
        "lrp.motifs.defaults",
        "lrp.report",
        "lrp.report.outputs",
    }


def test_jaspar_names_select_the_database(tmp_path):
    """motif_database.jaspar.names (a documented key) parses, dry-runs, and the rule writes only those TFs."""
    config = demo_config()
    config["motif_database"]["jaspar"]["names"] = ["CTCF"]
    dry = snakemake(tmp_path, "-n", "-p", "--cores", "1", config=config)
    assert dry.returncode == 0, dry.stderr + dry.stdout
    assert "--tax-group vertebrates --names CTCF --out resources/motif_database.meme" in dry.stdout
    run = snakemake(tmp_path, "--cores", "1", "--until", "jaspar_meme", config=config)
    assert run.returncode == 0, run.stderr + run.stdout
    meme = (tmp_path / "resources/motif_database.meme").read_text()
    assert re.findall(r"^MOTIF \S+ (\S+)", meme, re.MULTILINE) == ["CTCF"]


def test_schema_methods_are_the_table():
    """The schema's method names, parameters and proportion range are lrp.engine.methods' (the workflow
    itself takes the parameter checks and defaults from that table)."""
    method = SCHEMA["$defs"]["method"]["properties"]
    assert method["method"]["enum"] == list(method_names())
    taken = {p for m in METHODS.values() for p in m.params}
    assert set(method) - {"method"} <= taken, set(method) - {"method"} - taken
    probability = SCHEMA["$defs"]["probability"]
    assert (probability["minimum"], probability["exclusiveMaximum"]) == P_RANGE
    assert "maximum" not in probability and "exclusiveMinimum" not in probability
    assert method["p_neg"]["$ref"] == "#/$defs/probability"
    # p_pos: a proportion or the table's AUTO; so is rules: a composite or AUTO
    assert method["p_pos"]["oneOf"] == [{"$ref": "#/$defs/probability"}, {"const": AUTO}]
    assert {"const": AUTO} in SCHEMA["$defs"]["rules"]["oneOf"]


_ALL = object()


def _key_paths(schema, value=_ALL, path=()):
    """Key paths (tuples, ``*`` for a name in a map such as ``genomes``) of a JSON schema: all it allows,
    or, given a config ``value``, those that value sets."""
    while "$ref" in schema:
        schema = SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    paths = set()
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []) + schema.get("allOf", []):
        paths |= _key_paths(branch, value, path)
    if "items" in schema:
        items = [_ALL] if value is _ALL else value if isinstance(value, list) else []
        for item in items:
            paths |= _key_paths(schema["items"], item, path)
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    extra = extra if isinstance(extra, dict) else None
    if value is _ALL:
        children = [(k, sub, _ALL) for k, sub in props.items()]
        children += [("*", extra, _ALL)] if extra else []
    elif isinstance(value, dict):
        children = [
            (k, props[k], v) if k in props else ("*", extra, v)
            for k, v in value.items()
            if k in props or extra
        ]
    else:
        children = []
    for key, sub, v in children:
        paths.add((*path, key))
        paths |= _key_paths(sub, v, (*path, key))
    return paths


def _every_key_config():
    return yaml.safe_load(EVERY_KEY.read_text())


def test_every_schema_key_is_set():
    """tests/config_every_key.yaml sets every key the schema has (with MEME_INSTEAD for the one exclusive
    key): a key added to the schema must be added there, so the dry run below covers it."""
    config = _every_key_config()
    schema_keys = _key_paths(SCHEMA)
    assert ("genomes", "*", "regions", "tile", "chroms") in schema_keys
    assert ("methods", "*", "rules", "names", "*", "gamma") in schema_keys
    set_keys = _key_paths(SCHEMA, config) | _key_paths(SCHEMA, {"motif_database": MEME_INSTEAD})
    missing = sorted(".".join(k) for k in schema_keys - set_keys)
    assert not missing, f"keys of the schema that {EVERY_KEY.name} does not set: {missing}"
    # the walk sees a key that is left out
    del config["calls"]["max_q"]
    assert ("calls", "max_q") not in _key_paths(SCHEMA, config)


def _stub_data(config, workdir):
    """The files the every-key config names: FASTA with random bases, a BED of one peak, stubs for the rest."""
    rng = random.Random(0)
    files = {MEME_INSTEAD["meme"]: "stub\n"}
    for spec in config["genomes"].values():
        files[spec["fasta"]] = ">chr1\n" + "".join(rng.choice("ACGT") for _ in range(2000)) + "\n"
        if "known_sites" in spec:
            files[spec["known_sites"]] = "chr1\t100\t110\tCTCF\t0\t+\n"
        if isinstance(spec["regions"], str):
            files[spec["regions"]] = "chr1\t800\t1000\n"
    for spec in config["models"].values():
        files[spec["path"]] = "stub\n"
        if spec.get("builder"):
            files[spec["builder"].rsplit(":", 1)[0]] = (
                "def build(width):\n    raise NotImplementedError\n"
            )
    for name, text in files.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(text)


def _shell_commands(stdout):
    return re.findall(r"^Shell command: (plrp .*)$", stdout, re.MULTILINE)


def test_every_key_config_dry_runs_and_its_commands_parse(tmp_path):
    """The every-key config dry-runs (with jaspar and with meme), and every plrp command it gives, the
    attribution shards included (the region tables are made for real first), parses with the plrp CLI; each
    method's --method-params mean what the config says."""
    from lrp.steps.cli import build_parser

    config = _every_key_config()
    _stub_data(config, tmp_path)
    pairs = [(g, m) for m, spec in config["models"].items() for g in spec["genomes"]]
    tables = [f"results/{g}/{m}/n_shards.txt" for g, m in pairs]
    made = snakemake(tmp_path, "--cores", "1", *tables, config=config)
    assert made.returncode == 0, made.stderr + made.stdout
    meme = {**config, "motif_database": MEME_INSTEAD}
    commands = []
    for variant in (config, meme):
        dry = snakemake(tmp_path, "-n", "-p", "--cores", "1", config=variant)
        assert dry.returncode == 0, dry.stderr + dry.stdout
        commands += _shell_commands(dry.stdout)
    steps = {shlex.split(c)[1] for c in commands}
    assert {"simulate", "train", "jaspar-meme", "regions", "attribute", "gather"} <= steps, steps
    assert {"bigwig", "call-motifs", "motifs", "logos", "evaluate", "report", "hub"} <= steps, steps
    attributed = set()
    for command in commands:
        argv = shlex.split(command.split(" 2>>", 1)[0])[1:]
        try:
            args = build_parser(argv[0]).parse_args(argv)
        except SystemExit:
            pytest.fail(f"plrp does not accept: {command}")
        if argv[0] == "attribute":
            method = re.search(r"/(?P<m>[^/]+)/shards/", args.out)["m"]
            given = {k: v for k, v in config["methods"][method].items() if k != "method"}
            kind = config["methods"][method]["method"]
            assert args.method == kind
            passed = json.loads(args.method_params)
            assert check_params(kind, passed) == check_params(kind, given), method
            attributed.add(method)
    assert attributed == set(config["methods"])
