"""Config resolution: the config loaded and validated, defaults resolved, and the tables of genomes, models
and methods the rules read (GENOMES, MODELS, METHODS, PAIRS and the motif database).

The method facts (names, families, parameters, defaults, the proportion range) come from
``lrp.engine.methods``, the one table the engine and the CLI use too. It imports the standard library only
(no torch), so parsing stays fast. It is this checkout's copy: Snakemake puts the Snakefile's directory first
on ``sys.path``, and the rules' conda environment installs the same checkout (PLRP_SOURCE below,
envs/plrp.post-deploy.sh), so parsing works before the package is installed and parses with the code the
jobs run. Nothing else of ``lrp`` is imported here.
"""

import os
import shutil
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from lrp.core.errors import PlrpError
from lrp.engine.methods import METHODS as METHOD_TABLE
from lrp.engine.methods import auto_keys
from lrp.engine.methods import check_params, family_of
from lrp.demo.spec import DEFAULT_HEADS as DEMO_DEFAULT_HEADS
from lrp.demo.spec import TARGETS as DEMO_TARGETS
from lrp.demo.spec import BUILDER as DEMO_BUILDER
from lrp.demo.spec import model_name as demo_model_name

SCHEMA = "../schemas/config.schema.yaml"
# envs/plrp.post-deploy.sh installs the package from this checkout into the rules' conda environment
os.environ.setdefault("PLRP_SOURCE", str(Path(workflow.basedir).resolve()))
DEMO = "demo"  # the name of the embedded demo genome and model
DEMO_DIR = "resources/demo"
JASPAR_DEFAULTS = {
    "release": "JASPAR2026",
    "collection": "CORE",
    "tax_group": "vertebrates",
}


def config_error(key, problem, fix):
    """A one-line configuration error that names the key: ``config: KEY: PROBLEM. Fix: FIX``."""
    return WorkflowError(f"config: {key}: {problem}. Fix: {fix}")


def _key_of(path):
    """``['methods', 'x', 'p_pos']`` -> ``methods.x.p_pos``."""
    return ".".join(str(p) for p in path) or "(top level)"


def _example(schema):
    """An example of a valid value of ``schema``: its ``examples``, default, first choice or its type."""
    if schema.get("examples"):
        return " or ".join(repr(e) for e in schema["examples"][:2])
    if "default" in schema:
        return repr(schema["default"])
    if schema.get("enum"):
        return repr(schema["enum"][0])
    kind = schema.get("type")
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    if kind in ("integer", "number"):
        return repr(max(1, low if isinstance(low, int) else 1))
    return {
        "boolean": "true",
        "string": "'text'",
        "array": "[...]",
        "object": "{...}",
    }.get(kind, "a value as in config.yaml")


_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "a text",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys",
    "null": "empty",
}


def _bound(error):
    """The problem and the fix of a value outside a minimum/maximum/length bound."""
    limit = error.validator_value
    words = {
        "minimum": ("is below the minimum", f"give a value >= {limit}"),
        "maximum": ("is above the maximum", f"give a value <= {limit}"),
        "exclusiveMinimum": ("must be greater than", f"give a value > {limit}"),
        "exclusiveMaximum": ("must be less than", f"give a value < {limit}"),
        "minItems": ("has too few entries, at least", f"give at least {limit} entries"),
        "maxItems": ("has too many entries, at most", f"give at most {limit} entries"),
        "minLength": ("is too short, at least", f"give at least {limit} characters"),
    }
    problem, fix = words[error.validator]
    return f"{error.instance!r} {problem} {limit}", fix


def _schema_message(error):
    """One line for a jsonschema ValidationError, phrased for people: the key, the problem, and a fix with an
    example of a valid value (the schema's ``examples``, default or choices)."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        # the branch the value was meant for: not a plain type mismatch, and the deepest
        candidates = [
            e for e in error.context if e.validator != "type"
        ] or error.context
        error = max(candidates, key=lambda e: len(e.absolute_path))
    key = _key_of(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    meaning = f" ({schema['description']})" if schema.get("description") else ""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        names = ", ".join(f"{where}{name}" for name in unknown)
        hint = f"; the keys allowed here are {', '.join(allowed)}" if allowed else ""
        return f"config: {names}: unknown key. Fix: remove or correct it{hint}"
    if error.validator == "required":
        return f"config: {key}: {error.message}. Fix: add it"
    if "propertyNames" in error.schema_path:
        # a name (of a genome, model or method) under ``key``: jsonschema reports the name's own check
        return (
            f"config: {key}: the name {error.instance!r} is not allowed{meaning}. "
            f"Fix: rename it, e.g. {_example(schema)}"
        )
    if error.validator == "pattern":
        return (
            f"config: {key}: {error.instance!r} is not a valid value{meaning}. "
            f"Fix: give a value like {_example(schema)}"
        )
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return (
            f"config: {key}: {error.instance!r} is not one of {choices}. "
            f"Fix: use one of them, e.g. {error.validator_value[0]!r}"
        )
    if error.validator == "type":
        want = error.validator_value
        want = " or ".join(
            _TYPE_WORDS.get(t, t) for t in (want if isinstance(want, list) else [want])
        )
        return (
            f"config: {key}: {error.instance!r} is not {want}{meaning}. "
            f"Fix: give {want}, e.g. {_example(schema)}"
        )
    if error.validator in (
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "minLength",
    ):
        problem, fix = _bound(error)
        return f"config: {key}: {problem}{meaning}. Fix: {fix}"
    return (
        f"config: {key}: {error.message}{meaning}. Fix: give a value like {_example(schema)} "
        "(workflow/schemas/config.schema.yaml lists every key)"
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


def _demo_models(config):
    """The demo model (lrp/demo/train.py: a BPNet-style network, outputs (profile (N, 1, L) logits, counts
    (N, 1))) once per explained head (train.heads), named by lrp.demo.spec.model_name.
    """
    return {
        demo_model_name(head, DEMO): {
            "path": f"{DEMO_DIR}/model.pt2",
            "kwargs": {},
            "trust_pickle": False,
            "length": config["train"]["length"],
            "alphabet": "ACGT",
            "target": dict(DEMO_TARGETS[head]),
            "genomes": [DEMO],
            # for deeplift-shap (see _model_spec): the state dict with the builder lrp/demo/train.py saved it from
            "module": {
                "path": f"{DEMO_DIR}/model_state.pt",
                "builder": DEMO_BUILDER,
                "kwargs_from": f"{DEMO_DIR}/model.json",
            },
        }
        for head in config["train"].get("heads", DEMO_DEFAULT_HEADS)
    }


def needs_module(kind):
    """Whether a method needs the model's nn.Module: the reference family (deeplift-shap) hooks its nn.ReLU
    modules, which a .pt2 program does not have (lrp/engine/explain.py)."""
    return family_of(kind) == "reference"


def _method_params(name, spec):
    """The parameters a method passes to ``plrp attribute --method-params``: checked and with the defaults
    filled in by ``lrp.engine.methods.check_params``; unset ones (``rules``: the default composite) left out.
    """
    kind = spec["method"]
    given = {key: value for key, value in spec.items() if key != "method"}
    for key in given:
        if key not in METHOD_TABLE[kind].params:
            takers = [m for m, method in METHOD_TABLE.items() if key in method.params]
            raise config_error(
                f"methods.{name}.{key}",
                f"{key} only applies to {', '.join(takers)}, not {kind}",
                f"remove it, or set method to one of {', '.join(takers)}",
            )
    try:
        params = check_params(kind, given)
    except PlrpError as err:
        raise WorkflowError(f"config: methods.{name}: {err}") from None
    return {
        key: value
        for key, value in params.items()
        if key in given or value not in (None, {})
    }


def _cuda_present():
    """A CUDA device on this machine, judged without importing torch."""
    return shutil.which("nvidia-smi") is not None


def _check_genomes(genomes, skip):
    for name, spec in genomes.items():
        if name in skip:
            continue
        _check_file(f"genomes.{name}.fasta", spec["fasta"], "FASTA file")
        if "known_sites" in spec:
            _check_file(f"genomes.{name}.known_sites", spec["known_sites"], "BED file")
        if isinstance(spec["regions"], str):
            _check_file(f"genomes.{name}.regions", spec["regions"], "BED file")


def _check_models(models, genomes, skip, user_genomes):
    """Check the models' files and builders; fill in each model's genomes (default: the user's)."""
    for name, spec in models.items():
        if name in skip:
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


def _resolve_methods(config, models):
    methods = {name: dict(spec) for name, spec in config["methods"].items()}
    for name, spec in methods.items():
        spec["params"] = _method_params(name, spec)
        spec["auto"] = bool(auto_keys(spec["params"]))  # rule choose_params runs first
        if not needs_module(spec["method"]):
            continue
        for model, mspec in models.items():
            if mspec["path"].endswith(".pt2") and "module" not in mspec:
                raise config_error(
                    f"models.{model}.path",
                    f"methods.{name} ({spec['method']}) needs the model's nn.Module, "
                    "and a .pt2 program has none",
                    "give the model as a state dict with builder and kwargs, or remove the method",
                )
    return methods


def _check_motif_database(database):
    if "meme" in database and "jaspar" in database:
        raise config_error(
            "motif_database",
            "both meme and jaspar are given",
            "keep one of motif_database.meme and motif_database.jaspar",
        )
    if "meme" in database:
        _check_file("motif_database.meme", database["meme"], "MEME file")


def resolve_config(config):
    """Validate ``config`` and return the tables the rules use: genomes, models, methods, pairs."""
    validate_config(config)
    genomes = {name: dict(spec) for name, spec in config["genomes"].items()}
    models = {name: dict(spec) for name, spec in config["models"].items()}
    demo = {DEMO} if _demo_enabled(config) else set()
    demo_models = _demo_models(config) if demo else {}
    for table, key, reserved in (
        (genomes, "genomes", demo),
        (models, "models", demo_models),
    ):
        for name in reserved:
            if name in table:
                raise config_error(
                    f"{key}.{name}",
                    f"the name {name!r} is reserved for the embedded demo, which is enabled",
                    "rename it, or set demo: false",
                )
    if demo:
        genomes[DEMO] = _demo_genome(config)
        models.update(demo_models)
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
    _check_genomes(genomes, skip=demo)
    user_genomes = [g for g in genomes if g != DEMO] or [DEMO]
    _check_models(models, genomes, skip=set(demo_models), user_genomes=user_genomes)
    methods = _resolve_methods(config, models)
    _check_motif_database(config["motif_database"])
    pairs = [(g, m) for m, spec in models.items() for g in spec["genomes"]]
    return genomes, models, methods, pairs


GENOMES, MODELS, METHODS, PAIRS = resolve_config(config)
ATTRIBUTION = config["attribution"]
SHARD_SIZE = ATTRIBUTION["shard_size"]
DEVICE = ATTRIBUTION["device"]
GPUS_PER_SHARD = 1 if DEVICE == "cuda" or (DEVICE == "auto" and _cuda_present()) else 0
MOTIF_DB = config["motif_database"].get("meme", "resources/motif_database.meme")
JASPAR = {**JASPAR_DEFAULTS, **config["motif_database"].get("jaspar", {})}
OUTPUT = config["output"]
GENOME_WIDE = (
    OUTPUT["mode"] == "genome"
)  # tracks from the shards, arrays of the selected windows only
SELECT = OUTPUT["select"] or {"top_fraction": 0.05}


def _alternatives(names):
    """A regex that matches exactly one of ``names`` (wildcard constraint)."""
    import re

    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    genome=_alternatives(GENOMES),
    model=_alternatives(MODELS),
    method=_alternatives(METHODS),
    shard=r"\d+",
