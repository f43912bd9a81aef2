"""Score one method's explanations against the known sites, and compare methods.

CLI, one method::

    plrp evaluate --relevance R.npz --regions regions.bed --known-sites known_sites.bed \\
        [--calls calls.tsv] [--model model.pt2 --target-index 0 ...] --method NAME [--p-pos 0.25] \\
        --out-json metrics.json --out-tsv metrics.tsv

CLI, comparison of methods (the metric files of every method)::

    plrp evaluate --compare a/metrics.json b/metrics.json ... --out-json comparison.json \\
        --out-tsv comparison.tsv --plots-dir plots/

The comparison's plots are drawn by :mod:`lrp.report.comparison`.
"""

import json
import logging
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError, input_error
from lrp.evaluation import metrics as M

# lrp.motifs.seqlets (numba) is imported where the relevance is projected: `--compare` runs without it

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

    Loads with ``lrp.engine.model_io.load_model`` (as ``plrp attribute`` does) and scores with
    :func:`lrp.engine.scoring.target_function`: ``alphabet`` permutes the channels at the model boundary;
    ``target`` as in :mod:`lrp.engine.target`.
    """
    from lrp.engine.model_io import load_model
    from lrp.engine.scoring import target_function

    path = Path(model_path)
    if not path.is_file():
        raise input_error(path, None, "model file not found", "check --model")
    model = load_model(str(path), builder, builder_kwargs or {}, trust_pickle)
    return target_function(model, target, alphabet, batch_size)


def evaluate_method(
    store, regions, sites, calls=None, f=None, include_negative=False, faith_kwargs=None
):
    """All metrics of one method -> dict (``scalars``, ``per_tf``, ``pr_curve``, ``layer_gini``...).

    Parameters
    ----------
    store : lrp.genomics.store.RelevanceStore
        The method's relevance (``relevance``, and ``ohe`` for faithfulness), read a block of rows at a time
        for the per-window metrics.
    regions : pandas.DataFrame
        The region table; ``sites``: known sites (BED6 frame).
    calls : pandas.DataFrame or None
        The calls TSV frame (positive calls only unless ``include_negative``).
    f : callable or None
        The model's ``f_t`` for faithfulness (skipped when None), run on at most
        ``faith_kwargs["max_windows"]`` evenly spaced windows with the other ``faith_kwargs`` passed to
        :func:`lrp.evaluation.metrics.faithfulness`.

    Memory is bounded: every metric reads the store a block of rows at a time, the pooled per-position
    precision-recall curve in a few passes (:func:`lrp.evaluation.metrics.pooled_pr`).
    """
    from lrp.motifs.seqlets import project

    index = np.asarray(store.index, dtype=np.int64)
    windows = regions.iloc[index].reset_index(drop=True)

    def blocks():
        for lo, hi in store.chunks():
            yield project(store.relevance[lo:hi]), M.site_mask(windows.iloc[lo:hi], sites)

    parts = {k: [] for k in ("gini", "rma", "rra")}
    n_with_site = n_pos = n_positions = 0
    for scores, mask in blocks():
        parts["gini"].append(M.gini(np.abs(scores)))
        parts["rma"].append(M.rma(scores, mask))
        parts["rra"].append(M.rra(scores, mask))
        n_with_site += int(mask.any(1).sum())
        n_pos, n_positions = n_pos + int(mask.sum()), n_positions + mask.size
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    area, levels, pr = M.pooled_pr(blocks, n_levels=PR_POINTS)
    scalars = {
        "n_windows": len(index),
        "n_windows_with_site": n_with_site,
        "gini": M.summarise(cat["gini"]),
        "rma": M.summarise(cat["rma"]),
        "rra": M.summarise(cat["rra"]),
        "auprc": area,
        "auprc_random": n_pos / n_positions if n_positions else float("nan"),
    }
    out = {"scalars": scalars, "pr_curve": {"recall": levels, "precision": pr}}
    small = store.small
    if "layer_gini" in small and "layer_names" in small:
        lg = np.asarray(small["layer_gini"], dtype=np.float64)
        out["layer_gini"] = {
            "names": [str(n) for n in np.asarray(small["layer_names"]).tolist()],
            "mean": [M.summarise(lg[:, j]) for j in range(lg.shape[1])],
        }
    if calls is not None:
        used = calls if include_negative else calls[calls["sign"] > 0]
        acc = M.call_accuracy(used, sites, windows)
        scalars.update({k: acc["overall"][k] for k in ("precision", "recall", "f1", "n_calls")})
        scalars["n_unknown_calls"] = acc["n_unknown_calls"]
        out["per_tf"] = acc["per_tf"]
    if f is not None:
        fa = method_faithfulness(f, store, faith_kwargs)
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


def compare(paths, out_json, out_tsv):
    """Comparison across methods -> ``comparison.tsv/json``; returns ``(docs, table)`` for the plots
    (:func:`lrp.report.comparison.plot_comparison`)."""
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
    return docs, table


def method_p_pos(method, p_pos=None, stored=None):
    """The pruned share ``p+`` of a method run: ``p_pos`` when given, else the relevance file's ``p_pos``
    (``stored``), else 0 for plain LRP, else parsed from a name like ``plrp-lambda_p0.25`` (None if none)."""
    if p_pos is None and stored is not None and np.asarray(stored).size == 1:
        p_pos = float(np.asarray(stored).reshape(-1)[0])
    if p_pos is None:
        p_pos = 0.0 if method.lower().startswith("lrp") else _p_from_name(method)
    return p_pos


def plot_family(method):
    """Method name without its ``_p0.25``-style suffix: the line it belongs to in the plots."""
    return re.sub(r"[_-]p(?:_pos)?[_-]?\d+(?:\.\d+)?.*$", "", method) or method


# ------------------------------------------------------------------------ faithfulness shared by methods
#: the self-check's part of the shared baseline, stored as ``selfcheck_KEY``: the keys of
#: :func:`lrp.evaluation.selfcheck.deletion_baseline` and ``rows`` (its windows' region rows)
SELFCHECK_KEYS = (
    "rows",
    "fractions",
    "f0",
    "random_aopc",
    "n_steps",
    "max_fraction",
    "n_random",
    "seed",
)


def write_faith_baseline(path, region_rows, baseline, selfcheck=None):
    """Write the random-order curves shared by every method's ``plrp evaluate --faith-baseline`` as one npz,
    atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        The npz.
    region_rows : numpy.ndarray
        (N,) int: the region rows of the windows of ``baseline``.
    baseline : dict
        :func:`lrp.evaluation.metrics.faithfulness_baseline` of those windows.
    selfcheck : dict, optional
        :func:`lrp.evaluation.selfcheck.deletion_baseline` of the self-check's windows, with ``rows``
        (their region rows).
    """
    params = {k: np.asarray(baseline[k]) for k in ("n_steps", "max_fraction", "background")}
    params.update({k: np.asarray(baseline[k]) for k in ("n_random", "seed")})
    if selfcheck is not None:
        params.update({f"selfcheck_{k}": np.asarray(selfcheck[k]) for k in SELFCHECK_KEYS})
    with atomic_open(path, "wb") as handle:
        np.savez(
            handle,
            rows=np.asarray(region_rows, dtype=np.int64),
            fractions=baseline["fractions"],
            f0=baseline["f0"],
            random_drop=baseline["random_drop"],
            **params,
        )


def read_faith_baseline(path):
    """The baseline dict of :func:`write_faith_baseline` (with ``rows``, the windows' region rows, and
    ``path``); ``selfcheck``: its self-check part (a dict as ``write_faith_baseline`` takes it, with
    ``path``), None where the file has none."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise input_error(path, None, f"not a faithfulness baseline ({err})", "rerun it") from None
    check = {k: out.pop(f"selfcheck_{k}") for k in SELFCHECK_KEYS if f"selfcheck_{k}" in out}
    out = _typed(out, path)
    out["background"] = str(out["background"])
    out["selfcheck"] = _typed(check, path) if check else None
    return out


def _typed(part, path):
    """A baseline part read from its npz: the parameters as Python numbers, and ``path``."""
    for key in ("n_steps", "n_random", "seed"):
        part[key] = int(part[key])
    part["max_fraction"] = float(part["max_fraction"])
    part["path"] = str(path)
    return part


def method_faithfulness(f, store, faith_kwargs):
    """Faithfulness of one method on at most ``faith_kwargs["max_windows"]`` evenly spaced store rows:
    with ``faith_kwargs["baseline"]`` (a :func:`read_faith_baseline` of the same windows) only the
    relevance-ordered curve runs; else the whole :func:`lrp.evaluation.metrics.faithfulness`. Only
    those rows are read."""
    from lrp.motifs.seqlets import project

    kw = dict(faith_kwargs or {})
    baseline = kw.pop("baseline", None)
    rows = M.evenly_spaced(len(store.index), kw.pop("max_windows", None))
    x = np.asarray(store.ohe[rows], dtype=np.float32)
    scores = project(store.relevance[rows])
    if baseline is None:
        fa = M.faithfulness(f, x, scores, **kw)
        f0 = f(x[:64])
    else:
        differ = [
            k for k in ("n_steps", "max_fraction", "background", "seed") if kw[k] != baseline[k]
        ]
        if differ or not np.array_equal(baseline["rows"], np.asarray(store.index)[rows]):
            raise PlrpError(
                f"{baseline.get('path', 'the faithfulness baseline')}: computed on other windows or with"
                f" other {differ or 'rows'} than {store.path}. Fix: rerun plrp faithfulness-baseline"
                " with the same options"
            )
        fa = M.faithfulness_from_baseline(f, x, scores, baseline)
        f0 = baseline["f0"][:64]
    if "target" in store.small:
        ft = np.asarray(store.small["target"], dtype=np.float64)[rows[:64]]
        fa["max_abs_target_error"] = float(np.abs(np.asarray(f0) - ft).max())
    fa["n_windows"] = len(rows)
    return fa
