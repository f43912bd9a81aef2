"""Paths, targets, input functions and the command-line options of the rules.

Every function the rule files call lives here or in config.smk (the rule files hold rules only); this file reads
the tables config.smk resolved (GENOMES, MODELS, METHODS, PAIRS, JASPAR) and, of ``lrp``, only the figure names
(lrp/report/outputs.py) and the calls' null defaults (lrp/motifs/defaults.py), both standard library only.
"""

import json
import shlex
from pathlib import Path

from lrp.motifs.defaults import FDR as CALLS_FDR, NULL as CALLS_NULL
from lrp.report.outputs import COMPARISON_PLOTS, LOGO_FIGURES


def q(value):
    """Shell-quote a value for a command line (JSON objects included)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return shlex.quote(str(value))


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


def check_regions_flags(wildcards):
    """``plrp check``'s regions: ``--bed PATH``, or ``--chroms ...`` of the tiles (none: every chromosome)."""
    regions = GENOMES[wildcards.genome]["regions"]
    if isinstance(regions, str):
        return f"--bed {q(regions)}"
    chroms = regions["tile"].get("chroms")
    return " ".join(["--chroms"] + [q(c) for c in chroms]) if chroms else ""


def _needs_module(wildcards):
    """deeplift-shap hooks the model's nn.ReLU modules: it needs the nn.Module, not a .pt2 program."""
    method = getattr(wildcards, "method", None)
    return method is not None and needs_module(METHODS[method]["method"])


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


def method_spec_flags(wildcards):
    """The method and its parameters as configured (``auto`` left for ``plrp choose-params``)."""
    spec = METHODS[wildcards.method]
    return f"--method {spec['method']} --method-params {q(spec['params'])}"


def method_flags(wildcards):
    """The method as ``plrp attribute`` runs it: with its auto parameters resolved."""
    return method_spec_flags(wildcards) + resolved_flag(wildcards)


def resolved_params(wildcards):
    """The method's ``plrp choose-params`` JSON where it has rules or p_pos on auto, else nothing."""
    if not METHODS[wildcards.method]["auto"]:
        return []
    return "results/{genome}/{model}/{method}/resolved_params.json".format(**wildcards)


def resolved_flag(wildcards):
    """`` --resolved-params FILE`` for a method with auto parameters, else empty."""
    path = resolved_params(wildcards)
    return f" --resolved-params {q(path)}" if path else ""


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
TRAIN_FLAGS = options("train", skip=("step", "heads"))
CALLS_FLAGS = options("calls", negate=("negative",), skip=("null_windows",))
MOTIFS_FLAGS = options("motifs")
LOGOS_FLAGS = options("logos")
EVALUATION_FLAGS = options("evaluation", skip=("faithfulness",))
JASPAR_NAMES_FLAG = (
    " ".join(["--names"] + [q(n) for n in JASPAR["names"]]) if "names" in JASPAR else ""
)


# The shuffled null of the calls (defaults from lrp/motifs/defaults.py, standard library only): needed when
# the calls are filtered (calls.fdr below 1, the default 0.2) under it (calls.null_kind shuffled, the default).
SHUFFLED_NULL = (
    config["calls"].get("null_kind", CALLS_NULL) == "shuffled"
    and config["calls"].get("fdr", CALLS_FDR) < 1
)
NULL_RELEVANCE = "results/{genome}/{model}/{method}/null_relevance.npz"


def null_relevance_input(wildcards):
    """The method's relevance on dinucleotide-shuffled windows (rule null_relevance), when the null is on."""
    return [NULL_RELEVANCE.format(**wildcards)] if SHUFFLED_NULL else []


def null_relevance_flag(wildcards):
    """`` --null-relevance FILE`` of ``plrp call-motifs``, when the shuffled null is on."""
    return (
        f"--null-relevance {q(NULL_RELEVANCE.format(**wildcards))}"
        if SHUFFLED_NULL
        else ""
    )


def null_windows_flags(wildcards):
    """``plrp null-relevance``'s sample: genome mode's selected windows, and ``calls.null_windows``."""
    flags = []
    if GENOME_WIDE:
        flags.append(f"--selection {q(SELECTION.format(**wildcards))}")
    if config["calls"].get("null_windows") is not None:
        flags.append(f"--null-windows {q(config['calls']['null_windows'])}")
    return " ".join(flags)


def evaluate_model_flags(wildcards):
    """The model options of ``plrp evaluate`` (faithfulness), or none when it is off."""
    if not config["evaluation"]["faithfulness"]:
        return ""
    return model_flags(wildcards, length=False)


def evaluate_method_flags(wildcards):
    """How the evaluation labels a method: its name, family (the method), pruned share p+ and parameters
    (the self-check names the composite in its advice)."""
    spec = METHODS[wildcards.method]
    p_pos = spec["params"].get("p_pos", 0.0)
    p_flag = (
        f" --p-pos {p_pos}" if isinstance(p_pos, (int, float)) else ""
    )  # auto: the chosen mean
    return (
        f"--method {q(wildcards.method)} --family {spec['method']}{p_flag}"
        f" --method-params {q(spec['params'])}"
    ) + resolved_flag(wildcards)


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


# ---------------------------------------------------------------------------------------------------------
# Output mode (config output): windows keeps every window's arrays; genome keeps the selected windows'
# ---------------------------------------------------------------------------------------------------------

METHOD_DIR = "results/{genome}/{model}/{method}"
STORE_ARRAYS = (
    ("hypothetical", "ohe") if GENOME_WIDE else ("relevance", "hypothetical", "ohe")
)
GATHER_OUTPUTS = {"npz": f"{METHOD_DIR}/relevance.npz"} | {
    key: f"{METHOD_DIR}/{key}.npy" for key in STORE_ARRAYS
}
HYPOTHETICAL_TRACKS = GENOME_WIDE and OUTPUT["hypothetical_track"]
BIGWIG_OUTPUTS = {"bw": f"{METHOD_DIR}/relevance.bw"} | (
    {f"hyp_{b}": f"{METHOD_DIR}/hypothetical_{b}.bw" for b in "ACGT"}
    if HYPOTHETICAL_TRACKS
    else {}
)
GATHER_FLAGS = f"--dtype {OUTPUT['dtype']} --arrays {' '.join(STORE_ARRAYS)}"
SELECTION = "results/{genome}/{model}/selection.npz"


def shard_output(pattern):
    """The shard files: temporary in genome mode (the tracks and the store are made from them)."""
    return temp(pattern) if GENOME_WIDE else pattern


def selection_input(wildcards):
    """Genome mode: the windows select_windows chose; windows mode: nothing."""
    return [SELECTION.format(**wildcards)] if GENOME_WIDE else []


def gather_flags(wildcards):
    if not GENOME_WIDE:
        return GATHER_FLAGS
    return f"{GATHER_FLAGS} --selection {q(SELECTION.format(**wildcards))}"


def bigwig_source(wildcards):
    """The store (windows mode) or, genome mode, the shards themselves: tracks stream from them."""
    return (
        shard_files(wildcards)
        if GENOME_WIDE
        else f"{METHOD_DIR}/relevance.npz".format(**wildcards)
    )


BIGWIG_SOURCE = (
    "--shards {input.source}" if GENOME_WIDE else "--relevance {input.source}"
)


def bigwig_flags(wildcards):
    """Genome mode with ``hypothetical_track``: the prefix of the per-base hypothetical bigWigs."""
    if not HYPOTHETICAL_TRACKS:
        return ""
    prefix = f"{METHOD_DIR}/hypothetical_".format(**wildcards)
    return f"--hypothetical-prefix {q(prefix)}"


def select_inputs(wildcards):
    inputs = {
        "fasta": genome_fasta(wildcards),
        "regions": "results/{genome}/{model}/regions.bed",
    }
    if "peaks" in SELECT:
        inputs["peaks"] = SELECT["peaks"]
    else:
        inputs["model"] = model_files(wildcards)
    return inputs


def select_flags(wildcards):
    if "peaks" in SELECT:
        return f"--peaks {q(SELECT['peaks'])}"
    flags = [model_flags(wildcards, length=False)]
    for key in ("top_fraction", "min_target"):
        if key in SELECT:
            flags.append(f"--{key.replace('_', '-')} {q(SELECT[key])}")
    return " ".join(flags)


FAITH_FLAGS = " ".join(
    f"--{k.replace('_', '-')} {q(v)}"
    for k, v in config["evaluation"].items()
    if k.startswith(("faith_", "selfcheck_")) and v is not None
)


def faith_baseline_inputs(wildcards):
    """The shared random-order curves of the faithfulness metric (none when it is off)."""
    if not config["evaluation"]["faithfulness"]:
        return []
    return "results/{genome}/{model}/faithfulness_baseline.npz".format(**wildcards)


def faith_baseline_flag(wildcards):
    if not config["evaluation"]["faithfulness"]:
        return ""
    return f"--faith-baseline {q(faith_baseline_inputs(wildcards))}"


def baseline_inputs(wildcards):
    inputs = {
        "fasta": genome_fasta(wildcards),
        "regions": "results/{genome}/{model}/regions.bed",
        "model": model_files(wildcards),
    }
    if GENOME_WIDE:
        inputs["selection"] = SELECTION
    return inputs


def baseline_flags(wildcards):
    selection = (
        f" --selection {q(SELECTION.format(**wildcards))}" if GENOME_WIDE else ""
    )
    return f"{model_flags(wildcards, length=False)} {FAITH_FLAGS}{selection}"
