"""Score one method's explanations against the known sites, and compare methods.

CLI, one method::

    plrp evaluate --relevance R.npz --regions regions.bed --known-sites known_sites.bed \\
        [--calls calls.tsv] [--model model.pt2 --target-index 0 ...] --method NAME [--p-pos 0.25] \\
        --out-json metrics.json --out-tsv metrics.tsv

CLI, comparison of methods (the metric files of every method)::

    plrp evaluate --compare a/metrics.json b/metrics.json ... --out-json comparison.json \\
        --out-tsv comparison.tsv --plots-dir plots/

The comparison writes ``metrics_vs_p``, ``pr_curves``, ``layer_sparsity`` and ``faithfulness`` as
``.png`` and ``.svg`` in ``--plots-dir`` (the last one blank-titled "no model" when no method has it).
"""

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError, input_error
from lrp.evaluation import metrics as M
from lrp.report.figures import save_figure
from lrp.steps.cli import json_option

log = logging.getLogger("plrp")

#: scalar metrics shown in tables and plotted against p, in this order
SCALARS = [
    "gini",
    "rma",
    "rra",
    "auprc",
    "precision",
    "recall",
    "f1",
    "n_calls",
    "aopc_relevance",
    "aopc_random",
    "aopc_gain",
]
PLOTS = ("metrics_vs_p", "pr_curves", "layer_sparsity", "faithfulness")
PR_POINTS = 101


def _finite(v):
    """JSON-safe float (NaN -> None)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite(obj)
    return obj


def downsample_pr(precision, recall, n=PR_POINTS):
    """Interpolated precision (max precision at recall >= r) at ``n`` recall levels in [0, 1]."""
    levels = np.linspace(0, 1, n)
    if not len(recall) or not np.isfinite(recall).all():
        return levels.tolist(), [None] * n
    best = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, levels, side="left")
    out = [float(best[i]) if i < len(best) else 0.0 for i in idx]
    return levels.tolist(), out


def model_fn(
    model_path,
    target=None,
    alphabet="ACGT",
    builder=None,
    builder_kwargs=None,
    trust_pickle=False,
    batch_size=128,
):
    """Callable ``f(x (n, 4, L) float32 ACGT) -> (n,)`` numpy: the explained scalar ``f_t(x)``.

    Loads with ``lrp.engine.model_io.load_model`` (as ``plrp attribute`` does) when that module exists, else a
    ``.pt2`` with ``torch.export.load``. ``alphabet`` permutes the channels at the model boundary;
    ``target`` as in :mod:`lrp.engine.target`.
    """
    import torch

    from lrp.engine.explain import _TargetModule
    from lrp.engine.target import normalize_target

    path = Path(model_path)
    if not path.is_file():
        raise input_error(path, None, "model file not found", "check --model")
    try:
        from lrp.engine.model_io import load_model
    except ImportError:
        load_model = None
    if load_model is not None:
        model = load_model(str(path), builder, builder_kwargs or {}, trust_pickle)
    elif path.suffix == ".pt2":
        model = torch.export.load(str(path))
    else:
        raise input_error(
            path, None, "cannot load this model without lrp.engine.model_io", "give a .pt2"
        )
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    if isinstance(model, torch.nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model = model.eval()
    wrapped = _TargetModule(model, normalize_target(target))
    upper = alphabet.upper()
    if sorted(upper) != list("ACGT"):
        raise PlrpError(
            f"alphabet {alphabet!r} is not a permutation of ACGT. Fix: e.g. --alphabet ACGT"
        )
    perm = ["ACGT".index(b) for b in upper]

    def f(x):
        out = []
        with torch.no_grad():
            for b in range(0, len(x), batch_size):
                xb = torch.as_tensor(np.asarray(x[b : b + batch_size], dtype=np.float32)[:, perm])
                out.append(wrapped(xb).reshape(-1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    return f


def evaluate_method(
    arrays, regions, sites, calls=None, f=None, include_negative=False, faith_kwargs=None
):
    """All metrics of one method -> dict (``scalars``, ``per_tf``, ``pr_curve``, ``layer_gini``...).

    ``arrays``: relevance.npz contents; ``regions``: region table; ``sites``: known sites (BED6 frame);
    ``calls``: calls TSV frame (positive calls only unless ``include_negative``); ``f``: model callable for
    faithfulness (skipped when None), run on at most ``faith_kwargs["max_windows"]`` evenly spaced windows
    with the other ``faith_kwargs`` passed to :func:`lrp.evaluation.metrics.faithfulness`.
    """
    rel = np.asarray(arrays["relevance"], dtype=np.float32)
    index = np.asarray(arrays["index"], dtype=np.int64)
    windows = regions.iloc[index].reset_index(drop=True)
    scores = rel.sum(1, dtype=np.float64)
    mask = M.site_mask(windows, sites)
    g = M.gini(np.abs(scores))
    precision, recall, _ = M.pr_curve(scores, mask)
    levels, pr = downsample_pr(precision, recall)
    scalars = {
        "n_windows": len(index),
        "n_windows_with_site": int(mask.any(1).sum()),
        "gini": M.summarise(g),
        "rma": M.summarise(M.rma(scores, mask)),
        "rra": M.summarise(M.rra(scores, mask)),
        "auprc": M.auprc(scores, mask),
        "auprc_random": float(mask.mean()) if mask.size else float("nan"),
    }
    out = {"scalars": scalars, "pr_curve": {"recall": levels, "precision": pr}}
    if "layer_gini" in arrays and "layer_names" in arrays:
        lg = np.asarray(arrays["layer_gini"], dtype=np.float64)
        out["layer_gini"] = {
            "names": [str(n) for n in np.asarray(arrays["layer_names"]).tolist()],
            "mean": [M.summarise(lg[:, j]) for j in range(lg.shape[1])],
        }
    if calls is not None:
        used = calls if include_negative else calls[calls["sign"] > 0]
        acc = M.call_accuracy(used, sites, windows)
        scalars.update({k: acc["overall"][k] for k in ("precision", "recall", "f1", "n_calls")})
        scalars["n_unknown_calls"] = acc["n_unknown_calls"]
        out["per_tf"] = acc["per_tf"]
    if f is not None:
        kw = dict(faith_kwargs or {})
        n = len(index)
        rows = np.unique(np.linspace(0, n - 1, min(n, kw.pop("max_windows", n))).astype(np.int64))
        x = np.asarray(arrays["ohe"], dtype=np.float32)[rows]
        fa = M.faithfulness(f, x, scores[rows], **kw)
        if "target" in arrays:
            ft = np.asarray(arrays["target"], dtype=np.float64)[rows[:64]]
            fa["max_abs_target_error"] = float(np.abs(f(x[:64]) - ft).max())
        fa["n_windows"] = len(rows)
        scalars.update({k: fa[k] for k in ("aopc_relevance", "aopc_random", "aopc_gain")})
        out["faithfulness"] = fa
    return out


def _p_from_name(method):
    m = re.search(r"(?:^|[_-])p(?:_pos)?[_-]?(\d+(?:\.\d+)?)", method)
    return float(m.group(1)) if m else None


def write_method(result, method, p_pos, family, out_json, out_tsv):
    """Write ``metrics.json`` (everything) and ``metrics.tsv`` (one row of scalars), atomically."""
    doc = {"method": method, "p_pos": p_pos, "family": family, **result}
    with atomic_open(out_json) as h:
        json.dump(_json_safe(doc), h, indent=1)
        h.write("\n")
    row = {"method": method, "family": family, "p_pos": p_pos, **result["scalars"]}
    with atomic_open(out_tsv) as h:
        pd.DataFrame([row]).to_csv(h, sep="\t", index=False, float_format="%.6g")


# --------------------------------------------------------------------------------------------- compare
def load_metrics(paths):
    """Read metric JSON files -> list of dicts (each with method, p_pos, family, scalars...)."""
    docs = []
    for p in paths:
        try:
            doc = json.loads(Path(p).read_text())
        except FileNotFoundError:
            raise input_error(
                p, None, "metrics file not found", "run `plrp evaluate` first"
            ) from None
        except json.JSONDecodeError as err:
            raise input_error(p, None, f"not JSON ({err})", "rerun `plrp evaluate`") from None
        if "scalars" not in doc or "method" not in doc:
            raise input_error(p, None, "not a plrp metrics file", "rerun `plrp evaluate`")
        docs.append(doc)
    names = [d["method"] for d in docs]
    if len(set(names)) != len(names):
        raise PlrpError(
            f"compare: method names repeat ({names}). Fix: give each method its own name"
        )
    return docs


def comparison_table(docs):
    """DataFrame: one row per method (method, family, p, scalars), sorted by family then p."""
    rows = []
    for d in docs:
        p = d.get("p_pos")
        rows.append(
            {
                "method": d["method"],
                "family": d.get("family") or d["method"],
                "p": 0.0 if p is None else float(p),
                **d["scalars"],
            }
        )
    df = pd.DataFrame(rows)
    return df.sort_values(["family", "p", "method"], kind="stable").reset_index(drop=True)


def plot_comparison(docs, table, plots_dir):
    """Write the comparison plots (PNG and SVG) into ``plots_dir``; returns their stems."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(plots_dir).mkdir(parents=True, exist_ok=True)
    cols = [c for c in SCALARS if c in table and table[c].notna().any()]
    # Each metric against p: one line per family; p = 0 methods (plain LRP) are drawn in every panel.
    n = max(len(cols), 1)
    ncol = min(4, n)
    fig, axes = plt.subplots(
        -(-n // ncol), ncol, figsize=(3.6 * ncol, 2.8 * -(-n // ncol)), squeeze=False
    )
    for ax, c in zip(axes.ravel(), cols):
        base = table[table["p"] == 0]
        for fam, sub in table.groupby("family", sort=True):
            if (sub["p"] > 0).any() and len(base):
                # Plain LRP is p = 0 of every pruned family: start each line there.
                sub = pd.concat([base.iloc[:1], sub[sub["p"] > 0]])
            sub = sub.sort_values("p")
            style = "o-" if len(sub) > 1 else "s"
            ax.plot(sub["p"], sub[c], style, label=fam, ms=5)
        ax.set_title(c)
        ax.set_xlabel("p (pruned share of positive relevance)")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(cols) :]:
        ax.axis("off")
    if cols:
        axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, plots_dir, "metrics_vs_p", dpi=120)

    fig, ax = plt.subplots(figsize=(5, 4))
    for d in docs:
        pr = d.get("pr_curve") or {}
        prec = np.array([np.nan if v is None else v for v in pr.get("precision", [])], float)
        if len(prec):
            auc = d["scalars"].get("auprc")
            ax.plot(
                pr["recall"], prec, label=f"{d['method']} (AUPRC {auc:.3f})" if auc else d["method"]
            )
    base = table["auprc_random"].dropna() if "auprc_random" in table else []
    if len(base):
        ax.axhline(float(base.iloc[0]), color="grey", ls=":", label="random")
    ax.set_xlabel("recall (known-site positions)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title("per-position precision-recall")
    save_figure(fig, plots_dir, "pr_curves", dpi=120)

    fig, ax = plt.subplots(figsize=(6, 4))
    for d in docs:
        lg = d.get("layer_gini")
        if lg:
            ax.plot(
                range(len(lg["mean"])),
                [np.nan if v is None else v for v in lg["mean"]],
                "o-",
                label=d["method"],
            )
            ax.set_xticks(range(len(lg["names"])), lg["names"], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("mean Gini of relevance")
    ax.set_title("per-layer sparsity")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    save_figure(fig, plots_dir, "layer_sparsity", dpi=120)

    fig, ax = plt.subplots(figsize=(5, 4))
    for d in docs:
        fa = d.get("faithfulness")
        if fa:
            (line,) = ax.plot(fa["fractions"], fa["curve_relevance"], "o-", ms=3, label=d["method"])
            ax.plot(fa["fractions"], fa["curve_random"], ":", color=line.get_color())
    ax.set_xlabel("share of positions deleted (most relevant first; dotted: random)")
    ax.set_ylabel("drop of f_t")
    ax.set_title("faithfulness" if ax.lines else "faithfulness: no model given")
    if ax.lines:
        ax.legend(fontsize=7)
    save_figure(fig, plots_dir, "faithfulness", dpi=120)
    return list(PLOTS)


def compare(paths, out_json, out_tsv, plots_dir=None):
    """Comparison across methods -> ``comparison.tsv/json`` and plots."""
    docs = load_metrics(paths)
    table = comparison_table(docs)
    with atomic_open(out_tsv) as h:
        table.to_csv(h, sep="\t", index=False, float_format="%.6g")
    per_tf = {d["method"]: d.get("per_tf", {}) for d in docs}
    doc = {
        "methods": table["method"].tolist(),
        "table": table.to_dict(orient="records"),
        "per_tf": per_tf,
    }
    with atomic_open(out_json) as h:
        json.dump(_json_safe(doc), h, indent=1)
        h.write("\n")
    if plots_dir:
        plot_comparison(docs, table, plots_dir)
    return table


# --------------------------------------------------------------------------------------------- CLI
def evaluate_arguments(parser):
    parser.add_argument("--relevance", help="gathered relevance.npz of one method")
    parser.add_argument("--regions", help="region table regions.bed")
    parser.add_argument(
        "--known-sites", help="known sites BED6 (chrom, start, end, TF, score, strand)"
    )
    parser.add_argument(
        "--chrom-sizes",
        help="the genome's chrom.sizes (plrp regions --chrom-sizes-out): known sites on other contigs "
        "or past a contig's end are errors",
    )
    parser.add_argument(
        "--fasta", help="the genome FASTA, instead of --chrom-sizes, to check the known sites"
    )
    parser.add_argument("--calls", help="motif calls TSV of this method (plrp call-motifs)")
    parser.add_argument(
        "--include-negative",
        action="store_true",
        help="score negative-sign calls too (default: positive calls only)",
    )
    parser.add_argument("--method", help="method name (default: the relevance file's folder name)")
    parser.add_argument(
        "--p-pos",
        type=float,
        help="the method's pruned share p+ (default: parsed from the name, lrp -> 0)",
    )
    parser.add_argument(
        "--family", help="line to draw this method on in the plots (e.g. plrp-lambda)"
    )
    parser.add_argument(
        "--model",
        help="model (.pt2, or a state dict with --builder): enables the faithfulness metric",
    )
    parser.add_argument(
        "--builder", help="'module:function' or 'file.py:function' building the model"
    )
    parser.add_argument(
        "--builder-kwargs", default="{}", help="JSON keyword arguments of the builder"
    )
    parser.add_argument("--trust-pickle", action="store_true", help="allow a pickled full module")
    parser.add_argument(
        "--target", default="{}", help='JSON, e.g. {"output": "counts", "index": 0}'
    )
    parser.add_argument("--alphabet", default="ACGT", help="the model's input channel order")
    parser.add_argument("--faith-steps", type=int, default=20, help="deletion steps")
    parser.add_argument(
        "--faith-max-fraction", type=float, default=0.2, help="largest share of positions deleted"
    )
    parser.add_argument("--faith-background", default="uniform", choices=("uniform", "shuffle"))
    parser.add_argument(
        "--faith-max-windows",
        type=int,
        default=512,
        help="faithfulness on at most this many windows (an evenly spaced subset)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="METRICS_JSON",
        help="compare methods: their metrics.json files (other inputs are then unused)",
    )
    parser.add_argument("--plots-dir", help="with --compare: folder for the comparison plots")
    parser.add_argument("--out-json", required=True, help="metrics.json (or comparison.json)")
    parser.add_argument("--out-tsv", required=True, help="metrics.tsv (or comparison.tsv)")


def evaluate_main(args):
    if args.compare:
        compare(args.compare, args.out_json, args.out_tsv, args.plots_dir)
        log.info("compare: %d methods -> %s", len(args.compare), args.out_tsv)
        return
    missing = [f for f in ("relevance", "regions", "known_sites") if not getattr(args, f)]
    if missing:
        raise PlrpError(
            f"evaluate: missing --{missing[0].replace('_', '-')}. Fix: give it, or --compare"
        )
    from lrp.genomics.regions import read_bed, read_regions
    from lrp.motifs.calls import check_regions, load_relevance, read_calls

    sizes = None
    if args.chrom_sizes:
        from lrp.genomics.genome import read_chrom_sizes

        sizes = read_chrom_sizes(args.chrom_sizes)
    elif args.fasta:
        from lrp.genomics.genome import chrom_sizes

        sizes = chrom_sizes(args.fasta)
    # the small inputs first: a bad BED fails before the arrays are read
    sites = read_bed(args.known_sites, sizes, what="known sites")
    arrays = load_relevance(args.relevance, keys=("relevance", "ohe", "index"))
    regions = read_regions(args.regions)
    check_regions(regions, arrays["index"], arrays["relevance"].shape[2], args.regions)
    calls = read_calls(args.calls) if args.calls else None
    method = args.method or Path(args.relevance).parent.name
    p_pos = args.p_pos
    if p_pos is None and "p_pos" in arrays and np.asarray(arrays["p_pos"]).size == 1:
        p_pos = float(np.asarray(arrays["p_pos"]).reshape(-1)[0])
    if p_pos is None:
        p_pos = 0.0 if method.lower().startswith("lrp") else _p_from_name(method)
    f, faith = None, None
    if args.model:
        f = model_fn(
            args.model,
            json_option(args.target, "--target"),
            args.alphabet,
            args.builder,
            json_option(args.builder_kwargs, "--builder-kwargs"),
            args.trust_pickle,
        )
        faith = {
            "n_steps": args.faith_steps,
            "max_fraction": args.faith_max_fraction,
            "background": args.faith_background,
            "seed": args.seed,
            "max_windows": args.faith_max_windows,
        }
    result = evaluate_method(
        arrays,
        regions,
        sites,
        calls,
        f=f,
        include_negative=args.include_negative,
        faith_kwargs=faith,
    )
    write_method(result, method, p_pos, args.family or _family(method), args.out_json, args.out_tsv)
    s = result["scalars"]
    log.info("evaluate %s: gini %.3f rma %.3f auprc %.3f", method, s["gini"], s["rma"], s["auprc"])


def _family(method):
    """Method name without its ``_p0.25``-style suffix: the line it belongs to in the plots."""
    return re.sub(r"[_-]p(?:_pos)?[_-]?\d+(?:\.\d+)?.*$", "", method) or method
