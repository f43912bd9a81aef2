"""A null for seqlet scores, the same for every method: calls at one target FDR (by default 20%).

The recursive seqlet caller (:func:`lrp.motifs.seqlets.call_seqlets`) proposes spans; its p-value is a rank
score, so one threshold calls each method at a different error rate. Here each seqlet is tested instead
against a null of the method's window sums, and the seqlets are called at one target FDR ``fdr``
(:data:`FDR`, config ``calls.fdr``) for every method. Two nulls (config ``calls.null_kind``, :data:`NULLS`):

**shuffled** (the default, :data:`NULL`). The method's own relevance on dinucleotide-shuffled copies of a
seeded sample of the windows (:func:`null_rows`, :func:`shuffled_windows`; ``plrp null-relevance`` explains
them with the attribution code path of the shards, parameters resolved as for the shards). The copies keep
each window's base and dinucleotide composition but no site, so the null is the same construction for every
method and does not depend on how many sites the windows hold:

1. **Statistic.** Sums of the projected relevance over every window of ``width`` bp (:data:`WIDTH`, about
   one binding site), all windows of all rows, positive and negative sides apart; the null's window sums
   ``V`` (``n_null`` of them) likewise.
2. **p-value.** Per side, the empirical p-value of an observed window sum ``W > 0``:
   ``p = (1 + #{V >= W}) / (1 + n_null)`` (negative side: ``W < 0`` and ``#{V <= W}``). It is never 0 and
   valid for any ``n_null``.
3. **Threshold.** Benjamini-Hochberg over all observed windows of a side (windows within float32 residue of
   0, ``|W| <= 1e-6 max |W|``, count as tests but can never pass): the threshold is the smallest window sum
   whose BH ratio ``m p(t) / #{W >= t}`` is at most ``fdr``.

A null that is all zero (sparse PLRP relevance on shuffled sequence is often exactly zero): every nonzero
observed window then has the smallest p-value, ``1 / (1 + n_null)``, so when the nonzero windows are at least
a share ``1 / (fdr (1 + n_null))`` of all windows (e.g. 0.016% at 5% and 128 windows of 1 kb) every nonzero
window passes and the calls are the seqlet caller's: the method gives sequence without sites no relevance
at all, so any relevance is beyond the null. The null's resolution, ``1 / (1 + n_null)``, bounds the smallest
p-value; more null windows (``calls.null_windows``) resolve a stricter FDR.

**laplace**. A null fitted to the method's own window sums, tfmodisco-lite's design (``extract_seqlets``: a
Laplace null fitted to the window sums of the projected relevance, and an FDR-controlled threshold on them):
no extra attribution, but it needs most windows to hold no site.

1. **Null.** The bulk of the window sums is the null. ``mu`` is their median; on each side the excess
   ``|W - mu|`` of the null is exponential (a Laplace with its own scale per side, as tfmodisco-lite fits).
   The scale is fitted from the median of the side's excess (:data:`QUANTILE`: ``b = median / log 2``, the
   robust Laplace estimate), which the sites, in the upper tail, move little. tfmodisco-lite takes the
   smallest scale over the 5th-95th percentiles, which is liberal: on sparse draws (90% zeros) the 25th
   percentile let 9% false windows through at a 5% target, the median 5.6%. On dense relevance whose window
   sums are near-normal the Laplace tail is conservative. Sparse relevance: windows within float32 residue
   of ``mu`` (PLRP's exact zeros) are no evidence: they count as tests (they can never pass) but not in the
   fit, so the null is a point mass at ``mu`` plus a Laplace on each side, weighted by the share of windows
   on that side. A side with no such windows calls nothing; no scale is ever zero.
2. **Threshold.** Benjamini-Hochberg as above with the null's tail probabilities
   ``p(W) = share * exp(-|W - mu| / b)``. No random draws (the tail is analytic).
3. **Known limit.** Where the nonzero windows are mostly sites (sparse relevance, a dense grammar) the scale
   is a site-level value and the calls vanish (measured: zero plrp-lambda calls on the demo at 5%). The
   shuffled null has no such limit.

**Calls** (both nulls). A seqlet is kept when its strongest window, of the windows of ``width`` bp that
contain it or lie inside it, passes its side's threshold. ``fdr >= 1`` keeps every seqlet (the filter off,
no null needed). More than :data:`SAMPLE_CAP` observed windows are sampled at an even stride, so it is
deterministic.

Memory: the scores are read a block of rows at a time (:class:`lrp.motifs.seqlets.ProjectedRows`), twice;
the observed sample is at most :data:`SAMPLE_CAP` values, the shuffled null ``null_windows`` rows.
"""

import logging
import zipfile
from dataclasses import asdict, dataclass

import numpy as np

from lrp.core.atomic import atomic_path
from lrp.core.errors import input_error

# the defaults have one owner (lrp.motifs.defaults), which the workflow reads at parse time too
from lrp.motifs.defaults import FDR, NULL, NULL_WINDOWS, NULLS, WIDTH  # noqa: F401
from lrp.motifs.seqlets import _blocks

log = logging.getLogger("plrp")

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


# ------------------------------------------------------------------------------------- the shuffled null
def null_rows(n, n_windows=NULL_WINDOWS, seed=0):
    """The rows (of ``n`` windows) the shuffled null is drawn from: a seeded sample of ``n_windows``
    without replacement, sorted (all ``n`` when fewer) -> ``(min(n, n_windows),)`` int64."""
    if n_windows < 1:
        raise ValueError(f"n_windows must be at least 1; got {n_windows}")
    if n <= n_windows:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, int(n_windows), replace=False)).astype(np.int64)


def shuffled_windows(x, seed=0):
    """Dinucleotide-shuffled copies ``(N, 4, L)`` float32 of one-hot windows ``x (N, 4, L)`` (ACGT), one per
    window, window ``i`` shuffled with seed ``seed + i`` (tangermeme's ``dinucleotide_shuffle``; an N column
    is shuffled as a letter of its own, so it stays an all-zero column)."""
    import torch
    from tangermeme.ersatz import dinucleotide_shuffle

    x = np.asarray(x, dtype=np.float32)
    if not len(x):
        return x.copy()
    out = dinucleotide_shuffle(torch.as_tensor(x), n=1, random_state=int(seed), allow_N=True)
    return out[:, 0].numpy().astype(np.float32)


def write_null_relevance(path, relevance, index, seed):
    """Write the shuffled null ``.npz`` atomically, the same bytes for the same arrays (fixed zip dates).

    ``relevance (n, L)`` float32: the projected relevance of the shuffled copies; ``index (n,)`` int64: the
    region rows they were shuffled from; ``seed``: the shuffle's seed."""
    arrays = {
        "relevance": np.asarray(relevance, dtype=np.float32),
        "index": np.asarray(index, dtype=np.int64),
        "seed": np.asarray(int(seed), dtype=np.int64),
    }
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def read_null_relevance(path, length=None):
    """The null's projected relevance ``(n, L)`` float64 of :func:`write_null_relevance`; with ``length``,
    checked to be ``L`` bp (the windows the calls are made on)."""
    try:
        with np.load(path) as z:
            rel = np.asarray(z["relevance"], dtype=np.float64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise input_error(
            path, "relevance", f"not a null relevance file ({err})", "rerun plrp null-relevance"
        ) from None
    if rel.ndim != 2 or not len(rel):
        raise input_error(
            path,
            "relevance",
            f"shape {rel.shape}, expected (n >= 1, L)",
            "rerun plrp null-relevance",
        )
    if length is not None and rel.shape[1] != length:
        raise input_error(
            path,
            "relevance",
            f"windows of {rel.shape[1]} bp, the calls' relevance has {length}",
            "rerun plrp null-relevance with this model and region table",
        )
    if not np.isfinite(rel).all():
        raise input_error(path, "relevance", "not finite", "rerun plrp null-relevance")
    return rel


def empirical_p(observed, null_values, sign=1):
    """Empirical p-values of window sums ``observed`` on side ``sign`` against the null's ``null_values``:
    ``(1 + #{sign V >= sign W}) / (1 + n_null)`` -> float64 array like ``observed``."""
    v = np.sort(sign * np.asarray(null_values, dtype=np.float64).ravel())
    w = sign * np.asarray(observed, dtype=np.float64)
    at_least = len(v) - np.searchsorted(v, w, side="left")
    return (1.0 + at_least) / (1.0 + len(v))


def empirical_threshold(values, null_values, fdr=FDR, sign=1):
    """The window sum at which side ``sign`` is called at ``fdr``: Benjamini-Hochberg with
    :func:`empirical_p` over every window in ``values`` (windows within residue of 0 are tests that never
    pass); ``+inf`` (``-inf`` for the negative side) when nothing passes."""
    d = sign * np.asarray(values, dtype=np.float64).ravel()
    eps = RESIDUE * float(np.abs(d).max()) if len(d) else 0.0
    x = np.sort(d[d > eps])[::-1]
    if not len(x):
        return sign * np.inf
    p = empirical_p(x, sign * np.asarray(null_values, dtype=np.float64), 1)
    passing = np.flatnonzero(p <= fdr * np.arange(1, len(x) + 1) / len(d))
    return sign * float(x[passing.max()]) if len(passing) else sign * np.inf


# ----------------------------------------------------------------------------------------------- calls
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


def _thresholds(values, fdr, null_scores, width):
    """``(threshold_pos, threshold_neg, info)`` of the shuffled null (``null_scores`` given) or the
    Laplace null fitted to ``values``."""
    if null_scores is None:
        null = fit_null(values)
        t = bh_threshold(values, null, fdr, 1), bh_threshold(values, null, fdr, -1)
        return (*t, {"null": "laplace", **asdict(null)})
    v = window_sums(np.asarray(null_scores, dtype=np.float64), width).ravel()
    if not len(v) or not np.isfinite(v).all():
        raise ValueError("the null relevance must be finite and not empty")
    t = empirical_threshold(values, v, fdr, 1), empirical_threshold(values, v, fdr, -1)
    zero = float(np.mean(np.abs(v) <= RESIDUE * float(np.abs(values).max() if len(values) else 0)))
    info = {"null": "shuffled", "n_null": len(v), "null_zero_share": zero}
    info.update(min_p=1.0 / (1 + len(v)), null_max=float(v.max()), null_min=float(v.min()))
    return (*t, info)


def filter_seqlets(scores, seqlets, fdr=FDR, width=WIDTH, null_scores=None):
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
    null_scores : ndarray (n, L) or None
        The shuffled null: the method's projected relevance on dinucleotide-shuffled windows
        (:func:`read_null_relevance`). ``None``: the Laplace null fitted to ``scores``.

    Returns
    -------
    seqlets : pandas.DataFrame
        The kept rows, with ``window_score`` (the tested window sum) and ``null_threshold`` (its side's).
    info : dict
        ``null`` (``shuffled`` or ``laplace``) and its facts (Laplace: ``mu``, shares, scales; shuffled:
        ``n_null``, ``null_zero_share``, ``min_p``), ``fdr``, ``width``, ``threshold_pos``,
        ``threshold_neg``, the seqlets before and after.
    """
    if not fdr > 0:
        raise ValueError(f"fdr must be above 0; got {fdr}")
    if fdr >= 1:  # off: the scores are not read at all (no window sums, no memory)
        nan = np.full(len(seqlets), np.nan)
        info = {"null": "off", "fdr": float(fdr), "width": int(width), "threshold_pos": -np.inf}
        info.update(threshold_neg=np.inf, n_seqlets=len(seqlets), n_kept=len(seqlets))
        return seqlets.assign(window_score=nan, null_threshold=nan), info
    values = sample(scores, width)
    t_pos, t_neg, facts = _thresholds(values, fdr, null_scores, width)
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
        **facts,
        "fdr": float(fdr),
        "width": int(width),
        "threshold_pos": float(t_pos),
        "threshold_neg": float(t_neg),
        "n_seqlets": len(seqlets),
        "n_kept": int(keep.sum()),
    }
    if facts["null"] == "laplace":
        what = f"Laplace, mu {facts['mu']:.3g}, scales +{facts['scale_pos']:.3g}/-{facts['scale_neg']:.3g}"
    else:
        what = f"shuffled, {facts['n_null']} null windows, {100 * facts['null_zero_share']:.0f}% of them zero"
    log.info(
        "null (%s; %d bp windows): at FDR %g the thresholds are %.4g / %.4g; %d of %d seqlets kept",
        what,
        width,
        fdr,
        t_pos,
        t_neg,
        keep.sum(),
        len(seqlets),
    )
    return out, info
