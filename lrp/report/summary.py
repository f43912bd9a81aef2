"""What each method found, from ``comparison.json``: the facts of the report's summary and TF x method matrix.

A TF is *known* when it has sites in the explained regions (``n_sites > 0`` for some method). A method
*recovered* a known TF when at least one of its calls names that TF (label or significant match) and lies on
one of its sites (``n_correct > 0``); it *hit* the sites without naming them when only unlabelled calls lie
there (``recall > 0``, ``n_correct = 0``); otherwise it *missed* the TF.
"""

import math
from pathlib import Path

import pandas as pd

#: the verdict's metrics (higher is better): column, label
VERDICT = (
    ("f1", "F1 of the motif calls"),
    ("auprc", "AUPRC on the known sites"),
    ("rma", "relevance mass on the sites"),
    ("aopc_gain", "faithfulness (AOPC gain)"),
    ("gini", "sparsity (Gini)"),
)


def _num(v):
    """A finite float, or None."""
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def outcomes(doc):
    """Per TF and method -> DataFrame ``tf, method, precision, recall, f1, n_calls, n_correct, n_sites,
    n_sites_hit, status`` (``recovered``, ``unnamed``, ``missed`` for known TFs, ``no sites`` otherwise)."""
    rows = []
    for method in doc.get("methods") or list(doc.get("per_tf") or {}):
        for tf, m in ((doc.get("per_tf") or {}).get(method) or {}).items():
            rows.append({"tf": tf, "method": method, **{k: m.get(k) for k in _FIELDS}})
    cols = ["tf", "method", *_FIELDS, "status"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    for c in ("precision", "recall", "f1"):
        df[c] = df[c].map(_num).astype(float)
    for c in ("n_calls", "n_correct", "n_sites", "n_sites_hit"):
        df[c] = df[c].fillna(0).astype(int)
    known = df.groupby("tf")["n_sites"].transform("max") > 0
    status = pd.Series("missed", index=df.index)
    status[df["n_sites_hit"] > 0] = "unnamed"
    status[df["n_correct"] > 0] = "recovered"
    df["status"] = status.where(known, "no sites")
    return df[cols]


_FIELDS = ("precision", "recall", "f1", "n_calls", "n_correct", "n_sites", "n_sites_hit")


def known_tfs(out):
    """Known TFs (:func:`outcomes` frame) -> DataFrame ``tf, n_sites, recovered_by`` (methods, best F1
    first), most-recovered TFs first."""
    k = out[out["status"] != "no sites"]
    rows = []
    for tf, g in k.groupby("tf", sort=True):
        rec = g[g["status"] == "recovered"].sort_values(["f1", "recall"], ascending=False)
        rows.append(
            {"tf": tf, "n_sites": int(g["n_sites"].max()), "recovered_by": rec["method"].tolist()}
        )
    df = pd.DataFrame(rows, columns=["tf", "n_sites", "recovered_by"])
    if len(df):
        df = df.assign(_n=df["recovered_by"].map(len)).sort_values(
            ["_n", "tf"], ascending=[False, True], kind="stable"
        )
    return df.drop(columns="_n", errors="ignore").reset_index(drop=True)


def read_timings(items):
    """``[(method, folder)]`` of Snakemake benchmark TSVs -> ``{method: seconds}`` (the ``s`` column
    summed over the folder's ``*.tsv``); folders without any are left out."""
    out = {}
    for method, folder in items:
        files = sorted(Path(folder).glob("*.tsv")) if Path(folder).is_dir() else []
        if Path(folder).is_file():
            files = [Path(folder)]
        total = 0.0
        for f in files:
            try:
                total += float(pd.read_csv(f, sep="\t")["s"].sum())
            except (KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
                continue
        if files:
            out[method] = total
    return out


def verdict(table, timings=None):
    """Best method per :data:`VERDICT` metric -> list of dicts ``metric, label, methods`` (ties share),
    ``value``, ``seconds`` (attribution time of the first, None when unknown)."""
    timings = timings or {}
    out = []
    for col, label in VERDICT:
        if col not in table:
            continue
        v = pd.to_numeric(table[col], errors="coerce")
        if not v.notna().any():
            continue
        best = float(v.max())
        methods = table.loc[(v - best).abs() <= 1e-9 * max(1.0, abs(best)), "method"].tolist()
        out.append(
            {
                "metric": col,
                "label": label,
                "methods": methods,
                "value": best,
                "seconds": timings.get(methods[0]),
            }
        )
    return out


def selfcheck(table):
    """Methods the self-check flagged -> list of dicts ``method, message, deletion_gain, auprc_ratio``;
    None when the comparison has no self-check columns."""
    if "selfcheck_flag" not in table:
        return None
    flag = table["selfcheck_flag"].map(
        lambda v: str(v).strip().lower() in ("true", "1", "yes") if not isinstance(v, bool) else v
    )
    rows = []
    for _, r in table[flag.astype(bool)].iterrows():
        rows.append(
            {
                "method": r["method"],
                "message": ""
                if pd.isna(r.get("selfcheck_message"))
                else str(r.get("selfcheck_message")),
                "deletion_gain": _num(r.get("selfcheck_deletion_gain")),
                "auprc_ratio": _num(r.get("selfcheck_auprc_ratio")),
            }
        )
    return rows


def choices(table):
    """What was chosen from the data per method -> list of dicts ``method, composite, auto_p`` for the
    methods with ``rules: auto`` (composite ``auto: NAME``) or ``p_pos: auto`` (``auto_p`` the mean
    per-layer p); empty when none, or when the comparison has no such columns."""
    if "composite" not in table:
        return []
    rows = []
    for _, r in table.iterrows():
        composite = "" if pd.isna(r.get("composite")) else str(r["composite"])
        p = _num(r.get("auto_p"))
        if composite.startswith("auto") or p is not None:
            rows.append({"method": r["method"], "composite": composite, "auto_p": p})
    return rows


def best_motif(tf, out, motif_tables):
    """The learned motif to show for ``tf``: among the methods that recovered it (best F1 first, then the
    rest), the first motif whose database match (else anchor) is ``tf``, lowest q first.

    ``motif_tables``: ``{method: motif_matches.tsv DataFrame}``. Returns ``(method, row)`` or None.
    """
    g = out[out["tf"] == tf].sort_values(["f1", "recall"], ascending=False, na_position="last")
    for method in g["method"]:
        t = motif_tables.get(method)
        if t is None or not len(t):
            continue
        for col in ("match_name", "anchor_name"):
            if col not in t:
                continue
            hit = t[t[col].astype(str) == tf]
            if len(hit):
                q = pd.to_numeric(hit["q"], errors="coerce") if "q" in hit else None
                row = hit.loc[q.fillna(1.0).idxmin()] if q is not None else hit.iloc[0]
                return method, row
    return None
