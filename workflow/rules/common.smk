"""Config loading and validation, the derived tables of genomes, models and methods, and input functions.

Every function of the workflow lives here (the rule files hold rules only). Nothing here imports the ``lrp``
package or torch: parsing the workflow stays fast and works before the package is installed.
"""

import json
import math
import os
import shlex
import shutil
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = "../schemas/config.schema.yaml"
# envs/plrp.post-deploy.sh installs the package from this checkout into the rules' conda environment
os.environ.setdefault("PLRP_SOURCE", str(Path(workflow.basedir).resolve()))
DEMO = "demo"  # the name of the embedded demo genome and model
DEMO_DIR = "resources/demo"
PLRP_METHODS = ("plrp-lambda", "plrp-m")
LOGO_FIGURES = ("motifs", "sites", "examples")  # lrp/report/logos.py FIGURES
COMPARISON_PLOTS = (
    "metrics_vs_p",
    "pr_curves",
    "layer_sparsity",
    "faithfulness",
)  # lrp/evaluation/evaluate.py
LRP_METHODS = ("lrp",) + PLRP_METHODS
MODULE_METHODS = (
    "deeplift-shap",
)  # need the nn.Module (a .pt2 program has no nn.ReLU modules to hook)
DEFAULT_P_POS = 0.25  # docs/plrp-method.md: p+ = 0.25, p- = p+ / 2
JASPAR_DEFAULTS = {
    "release": "JASPAR2026",
    "collection": "CORE",
    "tax_group": "vertebrates",
}


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------


def config_error(key, problem, fix):
    """A one-line configuration error that names the key: ``config: KEY: PROBLEM. Fix: FIX``."""
    return WorkflowError(f"config: {key}: {problem}. Fix: {fix}")


def _key_of(path):
    """``['methods', 'x', 'p_pos']`` -> ``methods.x.p_pos``."""
    return ".".join(str(p) for p in path) or "(top level)"


def _schema_message(error):
    """One line for a jsonschema ValidationError that names the offending key."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        # the branch the value was meant for: not a plain type mismatch, and the deepest
        candidates = [
            e for e in error.context if e.validator != "type"
        ] or error.context
        error = max(candidates, key=lambda e: len(e.absolute_path))
    key = _key_of(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        names = ", ".join(f"{where}{name}" for name in unknown)
        hint = f"; the keys allowed here are {', '.join(allowed)}" if allowed else ""
        return f"config: {names}: unknown key. Fix: remove or correct it{hint}"
    if error.validator == "required":
        return f"config: {key}: {error.message}. Fix: add it"
    if error.validator == "propertyNames":
        return (
            f"config: {key}: the name {error.instance!r} is not allowed. "
            "Fix: use letters, digits, '.', '_', '+' and '-', starting with a letter or digit"
        )
    return (
        f"config: {key}: {error.message}. Fix: see workflow/schemas/config.schema.yaml"
    )


def validate_config(config):
    """Check ``config`` against the schema (filling its defaults); raise one line naming the bad key."""
    from jsonschema.exceptions import ValidationError

    try:
        validate(config, SCHEMA)
    except WorkflowError as err:
        cause = err.__context__
        if isinstance(cause, ValidationError):
            raise WorkflowError(_schema_message(cause)) from None
        raise


def _check_file(key, path, what):
    if not os.path.isfile(path):
        raise config_error(
            key,
            f"{what} {path!r} does not exist (relative paths are read from {os.getcwd()})",
            "correct the path, or run snakemake with --directory where the path is valid",
        )


def _demo_enabled(config):
    demo = config["demo"]
    if demo == "auto":
        return not config["genomes"] and not config["models"]
    return demo


def _demo_test_chrom(config):
    """The held-out chromosome of the demo: train.test_chrom, else the last simulated one."""
    return (
        config["train"].get("test_chrom")
        or f"chr{len(config['simulate']['chrom_lengths'])}"
    )


def _demo_genome(config):
    return {
        "fasta": f"{DEMO_DIR}/genome.fa",
        "known_sites": f"{DEMO_DIR}/known_sites.bed",
        "regions": {
            "tile": {
                "step": config["train"]["step"],
                "chroms": [_demo_test_chrom(config)],
            }
        },
    }


def _demo_model(config):
    # lrp/demo/train.py: outputs (N, tasks) logits, task 0 = "any planted site in the window"
    return {
        "path": f"{DEMO_DIR}/model.pt2",
        "kwargs": {},
        "trust_pickle": False,
        "length": config["train"]["length"],
        "alphabet": "ACGT",
        "target": {"output": None, "index": 0, "reduction": "none"},
        "genomes": [DEMO],
        # for deeplift-shap (see _model_spec): the state dict with the builder lrp/demo/train.py saved it from
        "module": {
            "path": f"{DEMO_DIR}/model_state.pt",
            "builder": "lrp.demo.model:build_model",
            "kwargs_from": f"{DEMO_DIR}/model.json",
        },
    }


def _method_params(name, spec):
    """The parameters a method passes to ``plrp attribute --method-params`` (defaults made explicit)."""
    kind = spec["method"]
    for key in ("p_pos", "p_neg"):
        if key in spec and kind not in PLRP_METHODS:
            raise config_error(
                f"methods.{name}.{key}",
                f"{key} only applies to {' and '.join(PLRP_METHODS)}, not {kind}",
                "remove it, or set method to plrp-lambda or plrp-m",
            )
    if "rules" in spec and kind not in LRP_METHODS:
        raise config_error(
            f"methods.{name}.rules",
            f"LRP rules do not apply to {kind}",
            f"remove it, or use one of {', '.join(LRP_METHODS)}",
        )
    if "n_shuffles" in spec and kind != "deeplift-shap":
        raise config_error(
            f"methods.{name}.n_shuffles",
            f"n_shuffles only applies to deeplift-shap, not {kind}",
            "remove it",
        )
    params = {}
    if kind in PLRP_METHODS:
        params["p_pos"] = float(spec.get("p_pos", DEFAULT_P_POS))
        params["p_neg"] = float(spec.get("p_neg", params["p_pos"] / 2))
        for key in ("p_pos", "p_neg"):
            if not 0 <= params[key] < 1:
                raise config_error(
                    f"methods.{name}.{key}",
                    f"{params[key]} is outside [0, 1)",
                    "use a share of relevance mass in [0, 1)",
                )
    if kind in LRP_METHODS and "rules" in spec:
        params["rules"] = spec["rules"]
    if kind == "deeplift-shap":
        params["n_shuffles"] = int(spec.get("n_shuffles", 20))
    return params


def _cuda_present():
    """A CUDA device on this machine, judged without importing torch."""
    return shutil.which("nvidia-smi") is not None


def resolve_config(config):
    """Validate ``config`` and return the tables the rules use: genomes, models, methods, pairs."""
    validate_config(config)
    genomes = {name: dict(spec) for name, spec in config["genomes"].items()}
    models = {name: dict(spec) for name, spec in config["models"].items()}
    if _demo_enabled(config):
        for table, key in ((genomes, "genomes"), (models, "models")):
            if DEMO in table:
                raise config_error(
                    f"{key}.{DEMO}",
                    f"the name {DEMO!r} is reserved for the embedded demo, which is enabled",
                    "rename it, or set demo: false",
                )
        genomes[DEMO] = _demo_genome(config)
        models[DEMO] = _demo_model(config)
    if not genomes:
        raise config_error(
            "genomes",
            "no genome is configured and the demo is off",
            "add genomes (fasta, regions), or set demo: true",
        )
    if not models:
        raise config_error(
            "models",
            "no model is configured and the demo is off",
            "add models (path, length), or set demo: true",
        )
    user_genomes = [g for g in genomes if g != DEMO] or [DEMO]
    for name, spec in genomes.items():
        if name == DEMO and _demo_enabled(config):
            continue
        _check_file(f"genomes.{name}.fasta", spec["fasta"], "FASTA file")
        if "known_sites" in spec:
            _check_file(f"genomes.{name}.known_sites", spec["known_sites"], "BED file")
        if isinstance(spec["regions"], str):
            _check_file(f"genomes.{name}.regions", spec["regions"], "BED file")
    for name, spec in models.items():
        if name == DEMO and _demo_enabled(config):
            continue
        _check_file(f"models.{name}.path", spec["path"], "model file")
        builder = spec.get("builder")
        if builder and builder.split(":")[0].endswith(".py"):
            _check_file(
                f"models.{name}.builder", builder.rsplit(":", 1)[0], "builder file"
            )
        if spec["kwargs"] and not builder:
            raise config_error(
                f"models.{name}.kwargs",
                "kwargs are the builder's arguments but no builder is given",
                "add builder: 'module:function' or remove kwargs",
            )
        for genome in spec.setdefault("genomes", user_genomes):
            if genome not in genomes:
                raise config_error(
                    f"models.{name}.genomes",
                    f"{genome!r} is not a configured genome ({', '.join(genomes)})",
                    "use one of the names under genomes",
                )
    methods = {name: dict(spec) for name, spec in config["methods"].items()}
    for name, spec in methods.items():
        spec["params"] = _method_params(name, spec)
        if spec["method"] not in MODULE_METHODS:
            continue
        for model, mspec in models.items():
            if mspec["path"].endswith(".pt2") and "module" not in mspec:
                raise config_error(
                    f"models.{model}.path",
                    f"methods.{name} ({spec['method']}) needs the model's nn.Module, "
                    "and a .pt2 program has none",
                    "give the model as a state dict with builder and kwargs, or remove the method",
                )
    database = config["motif_database"]
    if "meme" in database and "jaspar" in database:
        raise config_error(
            "motif_database",
            "both meme and jaspar are given",
            "keep one of motif_database.meme and motif_database.jaspar",
        )
    if "meme" in database:
        _check_file("motif_database.meme", database["meme"], "MEME file")
    pairs = [(g, m) for m, spec in models.items() for g in spec["genomes"]]
    return genomes, models, methods, pairs


GENOMES, MODELS, METHODS, PAIRS = resolve_config(config)
DEMO_ON = _demo_enabled(config)
ATTRIBUTION = config["attribution"]
SHARD_SIZE = ATTRIBUTION["shard_size"]
DEVICE = ATTRIBUTION["device"]
GPUS_PER_SHARD = 1 if DEVICE == "cuda" or (DEVICE == "auto" and _cuda_present()) else 0
MOTIF_DB = config["motif_database"].get("meme", "resources/motif_database.meme")
JASPAR = {**JASPAR_DEFAULTS, **config["motif_database"].get("jaspar", {})}
JASPAR_NAMES = " ".join(q(n) for n in JASPAR.get("names", []))


def _alternatives(names):
    """A regex that matches exactly one of ``names`` (wildcard constraint)."""
    import re

    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    genome=_alternatives(GENOMES),
    model=_alternatives(MODELS),
    method=_alternatives(METHODS),
    shard=r"\d+",


# ---------------------------------------------------------------------------------------------------------
# Paths and targets
# ---------------------------------------------------------------------------------------------------------

RUN_FILES = (
    "relevance.bw",
    "calls.bed",
    "calls.bb",
    "motifs.meme",
    "logos/motifs.png",
    "metrics.json",
)
PAIR_FILES = ("comparison.tsv", "report.html", "hub/hub.txt")


def all_targets():
    """Every final output: per genome, model and method, and per genome and model."""
    targets = []
    for genome, model in PAIRS:
        for method in METHODS:
            targets += [
                f"results/{genome}/{model}/{method}/{name}" for name in RUN_FILES
            ]
        targets += [f"results/{genome}/{model}/{name}" for name in PAIR_FILES]
    return targets


# ---------------------------------------------------------------------------------------------------------
# Input functions and parameters
# ---------------------------------------------------------------------------------------------------------


def q(value):
    """Shell-quote a value for a command line (JSON objects included)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return shlex.quote(str(value))


def genome_fasta(wildcards):
    return GENOMES[wildcards.genome]["fasta"]


def known_sites(wildcards):
    """The known sites BED of a genome, or nothing when it has none."""
    path = GENOMES[wildcards.genome].get("known_sites")
    return [path] if path else []


def known_sites_flag(wildcards):
    path = GENOMES[wildcards.genome].get("known_sites")
    return f"--known-sites {q(path)}" if path else ""


def regions_input(wildcards):
    """A genome's region BED (when given as a file), besides its FASTA."""
    regions = GENOMES[wildcards.genome]["regions"]
    return [regions] if isinstance(regions, str) else []


def regions_flags(wildcards):
    """``--bed PATH`` or ``--tile-step S [--chroms ...]`` and the model's length."""
    regions = GENOMES[wildcards.genome]["regions"]
    flags = ["--length", str(MODELS[wildcards.model]["length"])]
    if isinstance(regions, str):
        flags += ["--bed", q(regions)]
    else:
        tile = regions["tile"]
        flags += ["--tile", "--step", str(tile["step"])]
        if tile.get("chroms"):
            flags += ["--chroms"] + [q(c) for c in tile["chroms"]]
    return " ".join(flags)


def _needs_module(wildcards):
    """deeplift-shap hooks the model's nn.ReLU modules: it needs the nn.Module, not a .pt2 program."""
    method = getattr(wildcards, "method", None)
    return method is not None and METHODS[method]["method"] in MODULE_METHODS


def _model_spec(wildcards):
    """The model a job loads. The demo model is its .pt2 program, or its state dict and builder for the
    methods that need the nn.Module (the builder's kwargs are in model.json, written by rule train).
    """
    spec = MODELS[wildcards.model]
    if "module" in spec and _needs_module(wildcards):
        return {**spec, **spec["module"]}
    return spec


def model_files(wildcards):
    """The files a job loads the model from: the model file, a ``file.py`` builder, the demo's model.json."""
    spec = _model_spec(wildcards)
    files = [spec["path"]]
    builder = spec.get("builder")
    if builder and builder.rsplit(":", 1)[0].endswith(".py"):
        files.append(builder.rsplit(":", 1)[0])
    if spec.get("kwargs_from"):
        files.append(spec["kwargs_from"])
    return files


def _builder_kwargs(spec):
    if not spec.get("kwargs_from"):
        return spec["kwargs"]
    try:
        with open(spec["kwargs_from"]) as handle:
            return json.load(handle)["kwargs"]
    except FileNotFoundError:
        # a dry run before the demo is trained: show where they will come from
        return f"<kwargs of {spec['kwargs_from']}>"


def model_flags(wildcards, length=True):
    """The model options of ``plrp attribute`` (and, without ``--length``, of ``plrp evaluate``)."""
    spec = _model_spec(wildcards)
    flags = ["--model", q(spec["path"])]
    if spec.get("builder"):
        flags += [
            "--builder",
            q(spec["builder"]),
            "--builder-kwargs",
            q(_builder_kwargs(spec)),
        ]
    if spec["trust_pickle"]:
        flags.append("--trust-pickle")
    if length:
        flags += ["--length", str(spec["length"])]
    flags += ["--alphabet", spec["alphabet"]]
    flags += ["--target", q(spec["target"])]
    return " ".join(flags)


def method_flags(wildcards):
    spec = METHODS[wildcards.method]
    return f"--method {spec['method']} --method-params {q(spec['params'])}"


def shard_files(wildcards):
    """The attribution shards of one genome, model and method; known once the region table exists."""
    counted = checkpoints.regions.get(
        genome=wildcards.genome, model=wildcards.model
    ).output.n_shards
    with open(counted) as handle:
        n_shards = int(handle.read().strip())
    return expand(
        "results/{genome}/{model}/{method}/shards/{shard}.npz",
        genome=wildcards.genome,
        model=wildcards.model,
        method=wildcards.method,
        shard=range(n_shards),
    )


def pair_runs(pattern):
    """An input function: ``pattern`` (relative to a method's directory) for every method of a pair."""

    def inputs(wildcards):
        return expand(
            f"results/{{genome}}/{{model}}/{{method}}/{pattern}",
            genome=wildcards.genome,
            model=wildcards.model,
            method=list(METHODS),
        )

    return inputs


def method_names(wildcards):
    return " ".join(q(m) for m in METHODS)


def options(section, skip=(), negate=()):
    """A config section as command-line options: ``{min_len: 4}`` -> ``--min-len 4``.

    A boolean gives a bare flag when true; for keys in ``negate``, ``--no-KEY`` when false instead.
    """
    flags = []
    for key, value in config[section].items():
        if key in skip or value is None:
            continue
        flag = f"--{key.replace('_', '-')}"
        if key in negate:
            flags += [] if value else [f"--no-{key.replace('_', '-')}"]
        elif isinstance(value, bool):
            flags += [flag] if value else []
        elif isinstance(value, list):
            flags += [flag] + [q(v) for v in value]
        else:
            flags += [flag, q(value)]
    return " ".join(flags)


SIMULATE_FLAGS = options("simulate", negate=("isochores",))
TRAIN_FLAGS = options("train", skip=("step",))
CALLS_FLAGS = options("calls", negate=("negative",))
MOTIFS_FLAGS = options("motifs")
LOGOS_FLAGS = options("logos")
EVALUATION_FLAGS = options("evaluation", skip=("faithfulness",))


def evaluate_model_flags(wildcards):
    """The model options of ``plrp evaluate`` (faithfulness), or none when it is off."""
    if not config["evaluation"]["faithfulness"]:
        return ""
    return model_flags(wildcards, length=False)


def evaluate_method_flags(wildcards):
    """How the evaluation labels a method: its name, family (the method) and pruned share p+."""
    spec = METHODS[wildcards.method]
    p_pos = spec["params"].get("p_pos", 0.0)
    return f"--method {q(wildcards.method)} --family {spec['method']} --p-pos {p_pos}"


def named(pattern, methods=None):
    """``NAME=PATH`` per method (``plrp logos --relevance``, ``plrp report``); an input-function twin."""

    def flags(wildcards, input=None):
        names = list(methods(wildcards) if callable(methods) else (methods or METHODS))
        w = {"genome": wildcards.genome, "model": wildcards.model}
        return " ".join(q(f"{m}={pattern.format(method=m, **w)}") for m in names)

    return flags


def this_method_first(wildcards):
    """Every method, this one first (the logos compare the example windows across methods)."""
    return [wildcards.method] + [m for m in METHODS if m != wildcards.method]


def plots_dir(wildcards, output):
    """The folder of the comparison plots."""
    return str(Path(output.json).parent / "plots")


def report_logos(wildcards):
    """``METHOD/FIGURE=PNG`` for every method's logos."""
    return " ".join(
        q(
            f"{m}/{figure}=results/{wildcards.genome}/{wildcards.model}/{m}/logos/{figure}.png"
        )
        for m in METHODS
        for figure in LOGO_FIGURES
    )


def report_tracks(wildcards):
    """The track files the report links to: each method's bigWig and calls, and the hub."""
    base = f"results/{wildcards.genome}/{wildcards.model}"
    tracks = []
    for m in METHODS:
        tracks += [
            f"{m} relevance={base}/{m}/relevance.bw",
            f"{m} calls={base}/{m}/calls.bb",
        ]
    tracks.append(f"track hub={base}/hub/hub.txt")
    return " ".join(q(t) for t in tracks)


def hub_genome_flags(wildcards):
    """A genome the browsers know (``assembly``, e.g. hg38), else a custom assembly hub named after it."""
    assembly = GENOMES[wildcards.genome].get("assembly")
    if assembly:
        return f"--assembly {q(assembly)}"
    return f"--genome-name {q(wildcards.genome)} --label {q(f'plrp {wildcards.model} on {wildcards.genome}')}"
