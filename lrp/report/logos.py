"""Logo figures (logomaker's layout drawn as one path collection; tangermeme's ``plot_logo`` for windows over
200 bp), PNG and SVG, atomic.

CLI::

    plrp logos --relevance lrp=lrp/relevance.npz plrp=plrp/relevance.npz --calls calls.tsv \\
        [--motifs motifs.npz --motif-table motif_matches.tsv --motif-db db.meme] --out-dir logos/ \\
        [--top-sites 8 --n-examples 3 --example-width 80]

Writes ``motifs``, ``sites`` and ``examples`` (``.png`` and ``.svg``) in ``--out-dir``:

- ``motifs``: each learned CWM beside its best database match (information content, on the strand that
  matched);
- ``sites``: relevance logos of the strongest called sites (the first ``--relevance`` method, whose calls
  ``--calls`` holds);
- ``examples``: the windows of the strongest calls, one column per window and one row per method.
"""

import logging
from functools import cache

import numpy as np
import pandas as pd

from lrp.report.figures import save_figure
from lrp.report.outputs import LOGO_FIGURES as FIGURES

log = logging.getLogger("plrp")

LOGOMAKER_MAX = (
    200  # bp; longer windows use tangermeme's plot_logo (drops letters under 2 % of the peak)
)
#: letter colours of logomaker's "classic" scheme, ACGT order
CLASSIC = ((0.0, 0.5, 0.0), (0.0, 0.0, 1.0), (1.0, 0.65, 0.0), (1.0, 0.0, 0.0))
GLYPH_WIDTH = 0.95  # of one position, as logomaker's Glyph
_NARROWEST = (
    "E"  # logomaker's dont_stretch_more_than: narrow letters are not stretched wider than E
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@cache
def unit_glyph(letter, flip=False):
    """The outline of ``letter`` in the unit box, as logomaker's ``Glyph`` places it (built once per letter).

    DejaVu Sans Bold (logomaker's ``font_name="sans"``), stretched to height 1 and to width
    ``min(1, width(letter) / width("E"))``, centred; ``flip`` turns it upside down (letters below the
    baseline).

    Returns
    -------
    (ndarray, ndarray)
        Vertices ``(n, 2)`` float64 in ``[0, 1]^2`` and path codes ``(n,)`` uint8.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MPath
    from matplotlib.textpath import TextPath

    prop = FontProperties(family="sans", weight="bold")
    path = TextPath((0, 0), letter, size=1, prop=prop)
    verts = np.array(path.vertices, dtype=np.float64)
    if flip:
        verts[:, 1] = -verts[:, 1]
    box = MPath(verts, path.codes).get_extents()
    widest = TextPath((0, 0), _NARROWEST, size=1, prop=prop).get_extents().width
    width = min(1.0, box.width / widest)
    verts[:, 0] = (verts[:, 0] - box.x0) / box.width * width + (1 - width) / 2
    verts[:, 1] = (verts[:, 1] - box.y0) / box.height
    verts.setflags(write=False)
    return verts, np.array(path.codes, dtype=np.uint8)


def logo_paths(matrix, start=0):
    """The letters of a logo as matplotlib paths in data coordinates, logomaker's layout.

    Each column is stacked in ascending order of value from the sum of its negative values upwards, so
    positive letters stack up from 0 with the largest on top and negative ones down with the largest
    outermost (drawn upside down); a letter of position ``j`` spans ``start + j +- GLYPH_WIDTH / 2``.
    Letters of zero height (three per column of projected relevance) are left out.

    Parameters
    ----------
    matrix : array_like, shape (4, w)
        ACGT rows.
    start : int
        Position of column 0 on the x axis.

    Returns
    -------
    (list of matplotlib.path.Path, list of tuple, (float, float), (float, float))
        The paths, their face colours, and logomaker's x and y limits.
    """
    from matplotlib.path import Path as MPath

    m = np.nan_to_num(np.asarray(matrix, dtype=np.float64))
    order = np.argsort(m, axis=0)  # per column, as logomaker's np.argsort(values)
    vals = np.take_along_axis(m, order, axis=0)
    height = np.abs(vals)
    ceiling = np.minimum(vals, 0).sum(0, keepdims=True) + np.cumsum(height, axis=0)
    floor = ceiling - height
    paths, colours = [], []
    for i, j in zip(*np.nonzero(height > 0)):
        b = int(order[i, j])
        verts, codes = unit_glyph("ACGT"[b], bool(vals[i, j] < 0))
        xy = verts * (GLYPH_WIDTH, height[i, j]) + (start + j - GLYPH_WIDTH / 2, floor[i, j])
        paths.append(MPath(xy, codes, readonly=True))
        colours.append(CLASSIC[b])
    w = m.shape[1]
    xlim = (start - GLYPH_WIDTH / 2, start + w - 1 + GLYPH_WIDTH / 2)
    ylim = (float(floor.min(initial=0.0)), float(ceiling.max(initial=0.0)))
    return paths, colours, xlim, ylim


def draw_logo(ax, matrix, start=0, title=None):
    """Draw a ``(4, w)`` matrix (ACGT rows; signed values stack up and down) on ``ax``.

    Up to ``LOGOMAKER_MAX`` bp: logomaker's layout, colours and limits (:func:`logo_paths`), drawn as one
    ``PathCollection`` with glyph outlines built once per letter (logomaker builds two ``TextPath`` and one
    patch per letter); longer: tangermeme's ``plot_logo``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape[1] > LOGOMAKER_MAX:
        from tangermeme.plot import plot_logo

        plot_logo(matrix, ax=ax)
    else:
        from matplotlib.collections import PathCollection

        paths, colours, xlim, ylim = logo_paths(matrix, start)
        ax.add_collection(
            PathCollection(paths, facecolors=colours, edgecolors="none", linewidths=0, zorder=0),
            autolim=False,
        )
        ax.set_xlim(*xlim)
        if ylim[1] > ylim[0]:
            ax.set_ylim(*ylim)
    ax.axhline(0, color="black", lw=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)


def information(pfm):
    """``(4, w)`` probabilities -> information-content matrix (bits), uniform background."""
    p = np.clip(np.asarray(pfm, dtype=np.float64), 1e-9, 1)
    p = p / p.sum(0, keepdims=True)
    ic = 2 + (p * np.log2(p)).sum(0)
    return p * ic[None, :]


def _empty(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    ax.set_axis_off()


def motifs_figure(motifs, table, db, max_motifs=12):
    """Figure: each learned CWM (left) beside its best database match (right)."""
    plt = _plt()
    shown = motifs[:max_motifs]
    n = max(len(shown), 1)
    fig, axes = plt.subplots(
        n, 2, figsize=(11, 1.7 * n), squeeze=False, gridspec_kw={"width_ratios": [3, 2]}
    )
    if not shown:
        _empty(axes[0, 0], "no learned motifs")
        _empty(axes[0, 1], "")
        return fig
    rows = table.set_index("motif") if table is not None and len(table) else None
    ids, names, pfms = db if db is not None else ([], [], [])
    for k, m in enumerate(shown):
        draw_logo(axes[k, 0], m["cwm"], title=f"{m['name']} (n={m['n_seqlets']}): CWM")
        axes[k, 0].set_ylabel("relevance", fontsize=7)
        r = rows.loc[m["id"]] if rows is not None and m["id"] in rows.index else None
        mid = "" if r is None or pd.isna(r["match_id"]) else str(r["match_id"])
        if mid and mid in ids:
            pfm = pfms[ids.index(mid)]
            if r["match_strand"] == "-":
                pfm = pfm[::-1, ::-1]
            q = r["q"]
            draw_logo(
                axes[k, 1],
                information(pfm),
                title=f"best match {mid} {names[ids.index(mid)]} ({r['match_strand']}) q={q:.2g}",
            )
            axes[k, 1].set_ylabel("bits", fontsize=7)
            axes[k, 1].set_ylim(0, 2)
        else:
            _empty(axes[k, 1], "no database match")
    fig.tight_layout()
    return fig


def top_calls(calls, n, sign=1):
    """The ``n`` strongest calls of one sign (by ``|attribution|``)."""
    c = calls[np.sign(calls["attribution"]) == sign] if sign else calls
    return c.reindex(c["attribution"].abs().sort_values(ascending=False, kind="stable").index).head(
        n
    )


def sites_figure(calls, relevance, n=8, pad=5):
    """Figure: relevance logos of the ``n`` strongest positive calls (``pad`` bp either side)."""
    plt = _plt()
    top = top_calls(calls, n)
    k = max(len(top), 1)
    fig, axes = plt.subplots(k, 1, figsize=(7, 1.5 * k), squeeze=False)
    if not len(top):
        _empty(axes[0, 0], "no calls")
        return fig
    L = relevance.shape[2]
    for ax, (_, c) in zip(axes[:, 0], top.iterrows()):
        s, e = max(int(c["window_start"]) - pad, 0), min(int(c["window_end"]) + pad, L)
        q = c.get("q", np.nan)
        draw_logo(
            ax,
            relevance[int(c["row"]), :, s:e],
            start=int(c["start"]) - (int(c["window_start"]) - s),
            title=f"{c['name']}  {c['chrom']}:{c['start']}-{c['end']}  q={float(q):.2g}",
        )
    fig.tight_layout()
    return fig


def examples_figure(relevances, calls, n=3, width=80):
    """Figure: windows of the ``n`` strongest calls (columns) under each method (rows).

    ``relevances``: ``{method: (N, 4, L)}`` with the same rows (region order); ``calls`` of one method.
    """
    plt = _plt()
    cand = top_calls(calls, 20 * n).drop_duplicates("row")
    # Prefer one window per TF label, then fill with the next strongest windows.
    first = cand.drop_duplicates("name")
    top = pd.concat([first, cand.drop(first.index)]).head(n)
    methods = list(relevances)
    ncol = max(len(top), 1)
    fig, axes = plt.subplots(
        len(methods), ncol, figsize=(4.5 * ncol, 1.6 * len(methods)), squeeze=False
    )
    if not len(top):
        for ax in axes.ravel():
            _empty(ax, "no calls")
        return fig
    for j, (_, c) in enumerate(top.iterrows()):
        first = relevances[methods[0]]
        L = first.shape[2]
        mid = (int(c["window_start"]) + int(c["window_end"])) // 2
        s = int(np.clip(mid - width // 2, 0, max(L - width, 0)))
        e = min(s + width, L)
        lim = max(float(np.abs(relevances[m][int(c["row"]), :, s:e].sum(0)).max()) for m in methods)
        for i, m in enumerate(methods):
            ax = axes[i, j]
            draw_logo(ax, relevances[m][int(c["row"]), :, s:e], start=s)
            if lim > 0:
                ax.set_ylim(-lim * 1.05, lim * 1.05)
            ax.set_xlim(s - 0.5, e - 0.5)
            if (
                i < len(methods) - 1
            ):  # the rows of a column share the x range: positions on the last
                ax.tick_params(labelbottom=False)  # only (fewer texts to lay out at every draw)
            if j == 0:
                ax.set_ylabel(m, fontsize=8)
            if i == 0:
                ax.set_title(f"{c['region']}: {c['name']} at {c['chrom']}:{c['start']}", fontsize=8)
    fig.tight_layout()
    return fig


def read_motif_table(path):
    """The ``motif_matches.tsv`` of ``plrp motifs`` (empty ``q``/``tomtom_p`` fields as NaN)."""
    return pd.read_csv(
        path, sep="\t", keep_default_na=False, na_values={"q": [""], "tomtom_p": [""]}
    )


def write_logos(
    out_dir,
    relevances,
    calls,
    motifs=(),
    table=None,
    db=None,
    top_sites=8,
    n_examples=3,
    example_width=80,
    max_motifs=12,
):
    """Draw and save the ``motifs``, ``sites`` and ``examples`` figures (PNG and SVG) in ``out_dir``.

    ``relevances``: ``{method: (N, 4, L)}`` (arrays or :class:`lrp.genomics.store.NpyRows`; only the rows
    drawn are read), the first the method ``calls`` belongs to; ``motifs``, ``table``, ``db``: the learned
    motifs (:func:`lrp.motifs.learned.read_npz`), their matches and the motif database (may be empty).
    """
    first = relevances[next(iter(relevances))]
    figures = {
        "motifs": motifs_figure(list(motifs), table, db, max_motifs),
        "sites": sites_figure(calls, first, top_sites),
        "examples": examples_figure(relevances, calls, n_examples, example_width),
    }
    for stem, fig in figures.items():
        save_figure(fig, out_dir, stem, dpi=110)
    log.info("logos: %s/{%s}.png/.svg", out_dir, ",".join(FIGURES))
