"""A null for seqlet scores, the same construction for every method: calls at one target FDR.

The recursive seqlet caller (:func:`lrp.motifs.seqlets.call_seqlets`) proposes spans; its p-value is a rank
score, so one threshold calls each method at a different error rate. Here each seqlet is tested instead
against a null fitted to the method's own scores, tfmodisco-lite's design (``extract_seqlets``: a Laplace
null fitted to the window sums of the projected relevance, and an FDR-controlled threshold on them):

1. **Statistic.** Sums of the projected relevance over every window of ``width`` bp (:data:`WIDTH`, about
   one binding site), all windows of all rows, positive and negative sides apart.
2. **Null.** Most windows hold no site, so the bulk of the window sums is the null. ``mu`` is their median;
   on each side the excess ``|W - mu|`` of the null is exponential (a Laplace with its own scale per side,
   as tfmodisco-lite fits). The scale is fitted from the median of the side's excess (:data:`QUANTILE`:
   ``b = median / log 2``, the robust Laplace estimate), which the sites, in the upper tail, move little.
   tfmodisco-lite takes the smallest scale over the 5th-95th percentiles, which is liberal: on sparse
   draws (90% zeros) the 25th percentile let 9% false windows through at a 5% target, the median 5.6%.
   On dense relevance whose window sums are near-normal the Laplace tail is conservative.
   Sparse relevance: windows within float32 residue of ``mu`` (``|W - mu| <= 1e-6 max |W|``; PLRP's
   exact zeros) are no evidence: they count as tests (they can never pass) but not in the fit, so the null
   is a point mass at ``mu`` plus a Laplace on each side, weighted by the share of windows on that side.
   A side with no such windows calls nothing; no scale is ever zero.
3. **Threshold.** Benjamini-Hochberg over all windows of a side with the null's tail probabilities
   ``p(W) = share * exp(-|W - mu| / b)``: the threshold is the smallest window sum whose BH ratio
   ``m p(t) / #{W >= t}`` is at most ``fdr``. No known sites, no random draws (the tail is analytic;
   more than :data:`SAMPLE_CAP` windows are sampled at an even stride), so it is deterministic.
4. **Calls.** A seqlet is kept when its strongest window, of the windows of ``width`` bp that contain it or
   lie inside it, passes its side's threshold. ``fdr >= 1`` keeps every seqlet (the filter is off: the
   default, see :data:`FDR`).

Known limit: the null comes from the method's own scores, so where the nonzero windows are mostly sites
(sparse relevance, a dense grammar) the scale is a site-level value and the calls vanish. A null from the
method's relevance on dinucleotide-shuffled windows would not have this limit; it costs one more attribution.

Memory: the scores are read a block of rows at a time (:class:`lrp.motifs.seqlets.ProjectedRows`), twice;
the fitted sample is at most :data:`SAMPLE_CAP` values.
"""

import logging
from dataclasses import asdict, dataclass

import numpy as np

from lrp.motifs.seqlets import _blocks

log = logging.getLogger("plrp")

#: the default target FDR: 1, the filter off. Opt in with ``calls.fdr`` (e.g. 0.05). Not on by default: where
#: nearly every nonzero window is a site (sparse PLRP relevance on the demo CNN), the fitted null is the sites
#: themselves and nothing passes (measured: zero plrp-lambda calls on the demo at 0.05).
FDR = 1.0
WIDTH = 10  #: bp of the windows whose sums are tested
QUANTILE = 0.5  #: the quantile of a side's excess the Laplace scale is fitted from
SAMPLE_CAP = 2_000_000  #: at most this many window sums are fitted (an even stride over the rest)
RESIDUE = 1e-6  #: |W - mu| <= RESIDUE * max |W| is no evidence (exact zeros, float32 round-off)


def window_sums(scores, width=WIDTH):
    """Sums over every window of ``width`` bp: ``(N, L) -> (N, L - w + 1)`` float64 (``w = min(width, L)``)."""
    scores = np.asarray(scores, dtype=np.float64)
    w = max(1, min(int(width), scores.shape[1]))
    c = np.concatenate([np.zeros((len(scores), 1)), np.cumsum(scores, 1)], 1)
    return c[:, w:] - c[:, :-w]


@dataclass(frozen=True)
class LaplaceNull:
    """The null of the window sums: a point mass at ``mu`` and one Laplace side each way.

    ``share_pos``/``share_neg``: share of windows above/below ``mu`` (beyond residue); ``scale_pos``/
    ``scale_neg``: the Laplace scales (``inf`` for an empty side); ``n_windows``: windows fitted."""

    mu: float
    share_pos: float
    scale_pos: float
    share_neg: float
    scale_neg: float
    n_windows: int

    def tail(self, excess, sign):
        """``P(sign * (W - mu) >= excess)`` under the null, for ``excess > 0`` (an array)."""
        share, scale = (
            (self.share_pos, self.scale_pos) if sign > 0 else (self.share_neg, self.scale_neg)
        )
        if not np.isfinite(scale):
            return np.ones_like(np.asarray(excess, dtype=np.float64))
        return share * np.exp(-np.asarray(excess, dtype=np.float64) / scale)


def sample(scores, width=WIDTH, cap=SAMPLE_CAP):
    """Window sums of ``scores`` (``(N, L)`` array or ProjectedRows), every ``k``-th so at most ``cap``."""
    n, L = scores.shape
    per_row = max(1, L - min(width, L) + 1)
    stride = max(1, -(-n * per_row // cap))
    parts, offset = [], 0
    for _, _, block in _blocks(scores):
        v = window_sums(block, width).ravel()
        parts.append(v[(-offset) % stride :: stride])
        offset += len(v)
    return np.concatenate(parts) if parts else np.zeros(0)


def fit_null(values, quantile=QUANTILE):
    """A :class:`LaplaceNull` fitted to window sums ``values (n,)`` (see the module notes)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if not len(v) or not np.isfinite(v).all():
        raise ValueError("window sums must be finite and not empty")
    mu = float(np.median(v))
    d = v - mu
    eps = RESIDUE * float(np.abs(v).max())
    sides = []
    for side in (d[d > eps], -d[d < -eps]):
        scale = float(np.quantile(side, quantile)) / -np.log1p(-quantile) if len(side) else 0.0
        sides += [len(side) / len(v), scale if scale > 0 else np.inf]
    return LaplaceNull(mu, sides[0], sides[1], sides[2], sides[3], len(v))


def bh_threshold(values, null, fdr=FDR, sign=1):
    """The window sum at which side ``sign`` is called at ``fdr`` (Benjamini-Hochberg with the null's tails
    over every window in ``values``); ``+inf`` (``-inf`` for the negative side) when nothing passes."""
    d = sign * (np.asarray(values, dtype=np.float64).ravel() - null.mu)
    eps = RESIDUE * float(np.abs(values).max()) if len(values) else 0.0
    x = np.sort(d[d > eps])[::-1]
    none = sign * np.inf
    if not len(x):
        return none
    p = null.tail(x, sign)
    passing = np.flatnonzero(p <= fdr * np.arange(1, len(x) + 1) / len(d))
    return null.mu + sign * float(x[passing.max()]) if len(passing) else none


def seqlet_scores(block, seqlets, width=WIDTH):
    """Per seqlet (rows of ``block (n, L)``, window coordinates), its strongest window sum in its sign's
    direction among the windows of ``width`` bp that contain the seqlet or lie inside it -> ``(k,)``."""
    sums = window_sums(block, width)
    w = block.shape[1] - sums.shape[1] + 1
    out = np.empty(len(seqlets))
    rows = zip(seqlets["example_idx"], seqlets["start"], seqlets["end"], seqlets["sign"])
    for i, (e, s, t, sign) in enumerate(rows):
        lo, hi = sorted((int(s), int(t) - w))
        lo, hi = max(lo, 0), min(max(hi, 0), sums.shape[1] - 1)
        out[i] = sign * (sign * sums[e, lo : hi + 1]).max()
    return out


def filter_seqlets(scores, seqlets, fdr=FDR, width=WIDTH):
    """Keep the seqlets that pass the null at ``fdr``.

    Parameters
    ----------
    scores : ndarray (N, L) or lrp.motifs.seqlets.ProjectedRows
        The projected relevance the seqlets were called on.
    seqlets : pandas.DataFrame
        :func:`lrp.motifs.seqlets.call_seqlets`'s table.
    fdr : float
        Target false-discovery rate (``>= 1``: keep every seqlet).
    width : int
        bp of the tested windows.

    Returns
    -------
    seqlets : pandas.DataFrame
        The kept rows, with ``window_score`` (the tested window sum) and ``null_threshold`` (its side's).
    info : dict
        The fit (``mu``, shares, scales), ``fdr``, ``width``, ``threshold_pos``, ``threshold_neg``, the
        seqlets before and after.
    """
    if not fdr > 0:
        raise ValueError(f"fdr must be above 0; got {fdr}")
    if fdr >= 1:  # off: the scores are not read at all (no window sums, no memory)
        nan = np.full(len(seqlets), np.nan)
        info = {"fdr": float(fdr), "width": int(width), "threshold_pos": -np.inf}
        info.update(threshold_neg=np.inf, n_seqlets=len(seqlets), n_kept=len(seqlets))
        return seqlets.assign(window_score=nan, null_threshold=nan), info
    values = sample(scores, width)
    null = fit_null(values)
    t_pos, t_neg = bh_threshold(values, null, fdr, 1), bh_threshold(values, null, fdr, -1)
    stat = np.zeros(len(seqlets))
    e = seqlets["example_idx"].to_numpy()
    for lo, hi, block in _blocks(scores) if len(seqlets) else ():
        sel = np.flatnonzero((e >= lo) & (e < hi))
        if len(sel):
            part = seqlets.iloc[sel].assign(example_idx=e[sel] - lo)
            stat[sel] = seqlet_scores(block, part, width)
    sign = seqlets["sign"].to_numpy()
    threshold = np.where(sign > 0, t_pos, t_neg)
    keep = np.where(sign > 0, stat >= threshold, stat <= threshold)
    out = seqlets.assign(window_score=stat, null_threshold=threshold)[keep].reset_index(drop=True)
    info = {
        **asdict(null),
        "fdr": float(fdr),
        "width": int(width),
        "threshold_pos": float(t_pos),
        "threshold_neg": float(t_neg),
        "n_seqlets": len(seqlets),
        "n_kept": int(keep.sum()),
    }
    log.info(
        "null (Laplace, %d bp windows, mu %.3g, scales +%.3g/-%.3g): at FDR %g the thresholds are "
        "%.4g / %.4g; %d of %d seqlets kept",
        width,
        null.mu,
        null.scale_pos,
        null.scale_neg,
        fdr,
        t_pos,
        t_neg,
        keep.sum(),
        len(seqlets),
    )
    return out, info
