"""The plots of the comparison of methods (``plrp evaluate --compare --plots-dir``): ``metrics_vs_p``,
``pr_curves``, ``layer_sparsity`` and ``faithfulness`` as ``.png`` and ``.svg`` (the last one titled "no model
given" when no method has it)."""

from pathlib import Path

import numpy as np
import pandas as pd

from lrp.evaluation.evaluate import SCALARS
from lrp.report.figures import save_figure
from lrp.report.outputs import COMPARISON_PLOTS as PLOTS


def _layer_value(doc, name):
    """Mean Gini of layer ``name`` in a method's metrics (NaN when the method lacks the layer or the Gini
    is undefined: relevance zero in every window)."""
    lg = doc["layer_gini"]
    v = lg["mean"][lg["names"].index(name)] if name in lg["names"] else None
    return np.nan if v is None else float(v)


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
    layered = [d for d in docs if (d.get("layer_gini") or {}).get("names")]
    names = list(dict.fromkeys(n for d in layered for n in d["layer_gini"]["names"]))
    zero = [n for n in names if all(not _layer_value(d, n) > 0 for d in layered)]
    shown = [n for n in names if n not in zero]
    for d in layered:
        ax.plot(range(len(shown)), [_layer_value(d, n) for n in shown], "o-", label=d["method"])
    ax.set_xticks(range(len(shown)), shown, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("mean Gini of relevance")
    ax.set_title("per-layer sparsity" if layered else "per-layer sparsity: no layered method")
    if zero:  # relevance all zero there (e.g. a residual branch whose ReLU never opens): no Gini
        ax.set_xlabel(f"left out, relevance zero for every method: {', '.join(zero)}", fontsize=8)
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
