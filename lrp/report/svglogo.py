"""Small sequence logos as inline SVG for the HTML report: a few kB each, sharp at any zoom.

The four letters are drawn once per page (:func:`glyph_defs`: DejaVu Sans Bold outlines from matplotlib,
scaled to the unit square) and every logo is an SVG ``<symbol>`` of ``<use>`` references to them
(:func:`logo_symbol`), shown where needed with :func:`use_logo`: a logo shown in two places is in the page
once.
"""

import html

import numpy as np

#: letter colours (logomaker's "classic" scheme), ACGT order
COLOURS = ("#109648", "#255c99", "#f7b32b", "#d62839")
GLYPH_PREFIX = "plrp-glyph-"


def _glyph_path(letter):
    """SVG path data of ``letter`` in the unit square (y down), from matplotlib's TextPath."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MPath
    from matplotlib.textpath import TextPath

    tp = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    verts = tp.vertices
    (x0, y0), (x1, y1) = verts.min(0), verts.max(0)

    def xy(p):
        return f"{(p[0] - x0) / (x1 - x0):.4f} {(y1 - p[1]) / (y1 - y0):.4f}"

    out = []
    for seg, code in tp.iter_segments(simplify=False, curves=True):
        pts = seg.reshape(-1, 2)
        if code == MPath.MOVETO:
            out.append("M" + xy(pts[0]))
        elif code == MPath.LINETO:
            out.append("L" + xy(pts[0]))
        elif code == MPath.CURVE3:
            out.append("Q" + " ".join(xy(p) for p in pts))
        elif code == MPath.CURVE4:
            out.append("C" + " ".join(xy(p) for p in pts))
        elif code == MPath.CLOSEPOLY:
            out.append("Z")
    return "".join(out)


def glyph_defs():
    """One hidden ``<svg>`` holding the ACGT glyphs (ids ``plrp-glyph-A`` ...); put it in the page once."""
    paths = "".join(
        f'<path id="{GLYPH_PREFIX}{b}" d="{_glyph_path(b)}" fill="{c}"/>'
        for b, c in zip("ACGT", COLOURS)
    )
    return f'<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>{paths}</defs></svg>'


def logo_symbol(symbol_id, matrix, height=1.0, column=10, px_height=36):
    """A ``<symbol>`` (inside a hidden ``<svg>``) drawing ``matrix`` as a logo.

    Parameters
    ----------
    symbol_id : str
        The symbol's document-wide id (:func:`use_logo` refers to it).
    matrix : array_like, shape (4, w)
        ACGT rows; positive values stack up from the baseline, negative ones down (largest outermost); the
        baseline moves to the middle when some column's negative total exceeds a tenth of ``height``.
    height : float
        The value drawn at full height (``2`` for information content in bits; the largest column
        total for relevance).
    column, px_height : int
        Pixel width of one position and height of the logo (the baseline sits at the bottom when no
        value is negative, in the middle otherwise).

    Returns
    -------
    (str, int, int)
        The hidden ``<svg>`` holding the symbol, and the logo's width and height in pixels.
    """
    m = np.nan_to_num(np.asarray(matrix, dtype=np.float64))
    w = m.shape[1]
    neg = float(np.clip(-m, 0, None).sum(0).max()) if w else 0.0
    signed = neg > 0.1 * height  # a baseline in the middle only for real negative values
    base = px_height / 2 if signed else px_height
    unit = (px_height / 2 if signed else px_height) / (height if height > 0 else 1.0)
    parts = []
    for j in range(w):
        col = m[:, j]
        for sign in (1, -1):
            vals = np.where(sign * col > 0, np.abs(col), 0.0)
            y = base
            for b in np.argsort(vals, kind="stable"):  # smallest at the baseline, largest outermost
                h = vals[b] * unit
                if h < 0.05:
                    continue
                top = y - h if sign > 0 else y
                parts.append(
                    f'<use href="#{GLYPH_PREFIX}{"ACGT"[b]}" transform="translate({j * column + 0.5:.1f}'
                    f' {top:.2f}) scale({column - 1} {h:.2f})"/>'
                )
                y = y - h if sign > 0 else y + h
    line = (
        f'<line x1="0" x2="{w * column}" y1="{base}" y2="{base}" stroke="#999" stroke-width="0.5"/>'
    )
    return (
        (
            f'<svg width="0" height="0" style="position:absolute" aria-hidden="true">'
            f'<symbol id="{html.escape(symbol_id)}" viewBox="0 0 {w * column} {px_height}">'
            f"{''.join(parts)}{line}</symbol></svg>"
        ),
        w * column,
        px_height,
    )


def use_logo(symbol_id, width, height, title=""):
    """An ``<svg>`` showing the logo :func:`logo_symbol` defined (``width`` x ``height`` px)."""
    t = f"<title>{html.escape(title)}</title>" if title else ""
    return (
        f'<svg class="logo" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img">{t}<use href="#{html.escape(symbol_id)}"/></svg>'
    )
