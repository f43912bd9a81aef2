"""Explanation metrics (pure numpy): sparsity, ground-truth localisation, faithfulness, motif-call accuracy.

Shapes: ``N`` windows of ``L`` bp; ``scores (N, L)`` is the projected relevance ``R.sum(1)``; ``mask (N, L)``
bool marks known binding sites inside each window. Per-window metrics return ``(N,)`` float64 with NaN where
undefined (no site, or no positive relevance); summaries use ``nanmean``.
"""

import math

import numpy as np


# --------------------------------------------------------------------------------------------- sparsity
def gini(x):
    """Gini index of each row of non-negative ``x (N, L)`` (or ``(L,)``) -> ``(N,)`` (or scalar).

    0 = all equal, ``1 - 1/L`` = one entry holds everything (Hurley & Rickard). NaN for an all-zero row.
    """
    x = np.asarray(x, dtype=np.float64)
    one = x.ndim == 1
    x = np.atleast_2d(x)
    if (x < 0).any():
        raise ValueError("gini needs non-negative values; pass |R.sum(1)|")
    n = x.shape[1]
    s = np.sort(x, axis=1)
    total = s.sum(1)
    k = np.arange(1, n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 1 - 2 * (s * (n - k + 0.5)).sum(1) / (n * total)
    g = np.where(total > 0, g, np.nan)
    return g[0] if one else g


def relevance_gini(relevance):
    """Gini of ``|relevance.sum(1)|`` per window; ``relevance (N, 4, L)`` -> ``(N,)``."""
    return gini(np.abs(np.asarray(relevance, dtype=np.float64).sum(1)))


# --------------------------------------------------------------------------------------------- localisation
def _check(scores, mask):
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    mask = np.atleast_2d(np.asarray(mask, dtype=bool))
    if scores.shape != mask.shape:
        raise ValueError(f"scores {scores.shape} and mask {mask.shape} differ")
    return scores, mask


def rma(scores, mask):
    """Relevance mass accuracy per window: positive relevance inside the mask / all positive relevance.

    ``scores, mask (N, L)`` -> ``(N,)``; NaN where the window has no site or no positive relevance.
    """
    scores, mask = _check(scores, mask)
    pos = np.clip(scores, 0, None)
    total = pos.sum(1)
    inside = (pos * mask).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inside / total
    return np.where((total > 0) & mask.any(1), out, np.nan)


def rra(scores, mask):
    """Relevance rank accuracy per window: share of the top ``|G|`` positions (by signed relevance) in G.

    Ties at the cut are broken by position (stable sort). ``(N, L)`` -> ``(N,)``; NaN without a site.
    """
    scores, mask = _check(scores, mask)
    out = np.full(scores.shape[0], np.nan)
    for i in np.flatnonzero(mask.any(1)):
        k = int(mask[i].sum())
        top = np.argsort(-scores[i], kind="stable")[:k]
        out[i] = mask[i, top].mean()
    return out


def pr_curve(scores, mask):
    """Precision-recall curve of ``scores`` against ``mask`` (any shape, pooled), one point per threshold.

    Returns ``(precision, recall, thresholds)``, thresholds descending; ties form one point.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(mask, dtype=bool).ravel()
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # end of each run of equal scores
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    n_pos = y.sum()
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / n_pos if n_pos else np.full(len(tp), np.nan)
    return precision, recall, s[last]


def auprc(scores, mask):
    """Area under the precision-recall curve (average precision, step-wise as in scikit-learn).

    ``scores, mask`` any shape, pooled; NaN when the mask is empty. A random score gives about the share
    of positives.
    """
    precision, recall, _ = pr_curve(scores, mask)
    if not np.asarray(mask, dtype=bool).any():
        return float("nan")
    dr = np.diff(np.r_[0.0, recall])
    return float((dr * precision).sum())


def evenly_spaced(n, at_most=None):
    """Sorted row indices: at most ``at_most`` (all when None) evenly spaced rows of ``n``."""
    return np.unique(np.linspace(0, n - 1, min(n, at_most or n)).astype(np.int64))


_SIGN = np.uint64(1 << 63)


def _sort_keys(scores):
    """float64 scores -> uint64 keys in the same order (negative values' bits flipped; -0.0 is 0.0)."""
    bits = (np.asarray(scores, dtype=np.float64) + 0.0).view(np.uint64)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def _key_range(keys, lo, hi):
    return (keys >= np.uint64(lo)) & (keys <= np.uint64(hi))


class _PooledCurve:
    """The pooled PR curve fed one block of distinct scores at a time, highest first: the area and the
    interpolated precision at fixed recall levels, as :func:`auprc` and the evaluation's curve give them."""

    def __init__(self, n_pos, levels):
        self.n_pos, self.levels = n_pos, levels
        self.tp = self.seen = 0
        self.area_parts = []
        self.best = np.full(len(levels), -np.inf)

    def add(self, totals, positives):
        """``totals``/``positives`` per distinct score of one block (descending), int64."""
        tp = self.tp + np.cumsum(positives)
        seen = self.seen + np.cumsum(totals)
        precision = tp / seen
        recall = tp / self.n_pos
        dr = np.diff(np.r_[self.tp / self.n_pos, recall])
        self.area_parts.append(float((dr * precision).sum()))
        suffix = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, self.levels, side="left")
        hit = idx < len(recall)
        self.best[hit] = np.maximum(self.best[hit], suffix[idx[hit]])
        self.tp, self.seen = int(tp[-1]), int(seen[-1])


def pooled_pr(passes, n_levels=101, budget=1 << 22):
    """Area under the pooled precision-recall curve and its interpolated precision, in bounded memory.

    ``passes()`` yields ``(scores, mask)`` blocks (any shapes, matching) and can be called again: the curve
    over every position is built in a few passes over the data, holding at most about ``budget`` scores at a
    time (a radix partition on the float bits, refined where one bucket holds more).

    Returns ``(auprc, levels, precision)``: ``auprc`` as :func:`auprc` gives it (NaN without positives;
    summed block by block, so its last bits may differ from :func:`auprc`'s); ``precision[i]`` the highest
    precision at recall >= ``levels[i]`` (``levels`` = ``n_levels`` points in [0, 1]; 0 where no point
    reaches the level; None throughout without positives).
    """
    levels = np.linspace(0, 1, n_levels)

    def histogram(lo, hi, shift):
        counts = np.zeros(1 << 16, np.int64)
        positives = np.zeros(1 << 16, np.int64)
        for scores, mask in passes():
            keys = _sort_keys(np.ravel(scores))
            y = np.ravel(mask).astype(bool)
            inside = _key_range(keys, lo, hi)
            digit = ((keys[inside] >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
            counts += np.bincount(digit, minlength=1 << 16)
            positives += np.bincount(digit, weights=y[inside], minlength=1 << 16).astype(np.int64)
        return counts, positives

    def runs(lo, hi):
        """Distinct scores in the key range [lo, hi] (descending) with their totals and positives."""
        keys, ys = [], []
        for scores, mask in passes():
            k = _sort_keys(np.ravel(scores))
            inside = _key_range(k, lo, hi)
            keys.append(k[inside])
            ys.append(np.ravel(mask).astype(bool)[inside])
        keys, ys = np.concatenate(keys), np.concatenate(ys)
        order = np.argsort(keys, kind="stable")[::-1]
        keys, ys = keys[order], ys[order]
        last = np.r_[np.flatnonzero(np.diff(keys)), len(keys) - 1]
        ends = np.cumsum(ys)[last]
        return np.diff(np.r_[-1, last]), np.diff(np.r_[0, ends])

    counts, positives = histogram(0, (1 << 64) - 1, 48)
    n_pos = int(positives.sum())
    if n_pos == 0:
        return float("nan"), levels.tolist(), [None] * n_levels
    curve = _PooledCurve(n_pos, levels)

    def walk(lo, shift, counts, positives):
        """Emit the buckets of one 16-bit digit (bucket b = keys lo + b << shift ...), highest first."""
        width = 1 << shift
        group = []  # consecutive buckets (descending) whose entries fit the budget together

        def flush():
            if group:
                top, bottom = group[0], group[-1]
                curve.add(*runs(lo + bottom * width, lo + (top + 1) * width - 1))
                group.clear()

        held = 0
        for b in np.flatnonzero(counts)[::-1]:
            if counts[b] > budget:
                flush()
                held = 0
                start = lo + int(b) * width
                if shift == 0:  # one distinct score
                    curve.add(counts[b : b + 1], positives[b : b + 1])
                else:
                    walk(start, shift - 16, *histogram(start, start + width - 1, shift - 16))
                continue
            if held + counts[b] > budget:
                flush()
                held = 0
            group.append(int(b))
            held += int(counts[b])
        flush()

    walk(0, 48, counts, positives)
    best = np.where(np.isfinite(curve.best), curve.best, 0.0)
    return math.fsum(curve.area_parts), levels.tolist(), [float(v) for v in best]


def site_mask(windows, sites):
    """Per-position mask ``(N, L)`` bool of known sites inside each window.

    ``windows``: DataFrame chrom, start, end (all the same length L), one row per relevance row.
    ``sites``: DataFrame chrom, start, end. Sites partly inside a window mark the part inside.
    """
    starts = windows["start"].to_numpy(np.int64)
    L = int((windows["end"] - windows["start"]).iloc[0]) if len(windows) else 0
    mask = np.zeros((len(windows), L), dtype=bool)
    for i, j in _overlap_pairs(windows, sites):
        s = max(int(sites["start"].iat[j]) - starts[i], 0)
        e = min(int(sites["end"].iat[j]) - starts[i], L)
        mask[i, s:e] = True
    return mask


# --------------------------------------------------------------------------------------------- intervals
def _overlap_pairs(a, b):
    """Index pairs ``(i, j)`` (positions in ``a`` and ``b``) of overlapping half-open intervals."""
    pairs = []
    b_chrom = b["chrom"].astype(str).to_numpy()
    for chrom in np.unique(a["chrom"].astype(str).to_numpy()):
        ia = np.flatnonzero(a["chrom"].astype(str).to_numpy() == chrom)
        ib = np.flatnonzero(b_chrom == chrom)
        if not len(ia) or not len(ib):
            continue
        bs = b["start"].to_numpy(np.int64)[ib]
        be = b["end"].to_numpy(np.int64)[ib]
        order = np.argsort(bs, kind="stable")
        bs, be, ib = bs[order], be[order], ib[order]
        longest = int((be - bs).max())
        a_s = a["start"].to_numpy(np.int64)[ia]
        a_e = a["end"].to_numpy(np.int64)[ia]
        lo = np.searchsorted(bs, a_s - longest, side="left")
        hi = np.searchsorted(bs, a_e, side="left")  # b.start < a.end
        for i, s, l, h in zip(ia, a_s, lo, hi):
            cand = np.arange(l, h)
            cand = cand[be[cand] > s]
            pairs.extend((int(i), int(ib[c])) for c in cand)
    return pairs


def inside(sites, regions):
    """Bool ``(n_sites,)``: each site lies wholly inside at least one region."""
    ok = np.zeros(len(sites), dtype=bool)
    for i, j in _overlap_pairs(sites, regions):
        if (sites["start"].iat[i] >= regions["start"].iat[j]) and (
            sites["end"].iat[i] <= regions["end"].iat[j]
        ):
            ok[i] = True
    return ok


# --------------------------------------------------------------------------------------------- calls
def _prf(n_correct, n_calls, n_hit, n_sites):
    p = n_correct / n_calls if n_calls else float("nan")
    r = n_hit / n_sites if n_sites else float("nan")
    if not (n_calls and n_sites):
        f = float("nan")
    else:
        f = 2 * p * r / (p + r) if (p + r) > 0 else 0.0
    return {
        "precision": p,
        "recall": r,
        "f1": f,
        "n_calls": int(n_calls),
        "n_correct": int(n_correct),
        "n_sites": int(n_sites),
        "n_sites_hit": int(n_hit),
    }


def call_accuracy(calls, sites, regions, unknown="unknown"):
    """Precision, recall and F1 of motif calls against known sites, overall and per TF.

    ``calls``: DataFrame chrom, start, end, name (best match TF, or ``unknown`` = unlabelled) and optionally
    ``matches`` (comma-separated TFs of every significant database match, as ``lrp.motifs.calls`` writes).
    ``sites``: chrom, start, end, name (TF). ``regions``: the explained windows (chrom, start, end).
    A call is correct when it overlaps a known site and, if labelled, that site's TF is its label or one of
    its significant matches (database motifs it matches equally well). Recall: sites wholly inside an
    explained region hit by at least one correct call. Per TF: precision over calls that name that TF
    (label or match), recall over that TF's sites. Returns ``{"overall": {...}, "per_tf": {tf: {...}}}``.
    """
    sites = sites.reset_index(drop=True)
    calls = calls.reset_index(drop=True)
    eligible = inside(sites, regions) if len(sites) else np.zeros(0, bool)
    c_name = calls["name"].astype(str).to_numpy()
    s_name = sites["name"].astype(str).to_numpy()
    if "matches" in calls:
        named = [
            {n} | set(filter(None, str(m).split(","))) if n != unknown else set()
            for n, m in zip(c_name, calls["matches"].fillna(""))
        ]
    else:
        named = [{n} if n != unknown else set() for n in c_name]
    correct = np.zeros(len(calls), bool)
    hit = np.zeros(len(sites), bool)
    for i, j in _overlap_pairs(calls, sites) if len(calls) and len(sites) else []:
        if c_name[i] == unknown or s_name[j] in named[i]:
            correct[i] = True
            hit[j] = True
    out = {"overall": _prf(correct.sum(), len(calls), (hit & eligible).sum(), eligible.sum())}
    per_tf = {}
    for tf in sorted(set(s_name[eligible]) | (set(c_name) - {unknown})):
        mine = np.array([tf in n for n in named], bool)
        theirs = eligible & (s_name == tf)
        per_tf[tf] = _prf((correct & mine).sum(), mine.sum(), (hit & theirs).sum(), theirs.sum())
    out["per_tf"] = per_tf
    out["n_unknown_calls"] = int((c_name == unknown).sum())
    return out


# --------------------------------------------------------------------------------------------- faithfulness
def _background(x, kind, rng):
    """Replacement columns ``(N, 4, L)``: ``uniform`` (0.25 each) or ``shuffle`` (a permutation of x)."""
    if kind == "uniform":
        return np.full(x.shape, 0.25, dtype=np.float32)
    if kind == "shuffle":
        perm = np.argsort(rng.random((x.shape[0], x.shape[2])), axis=1)
        return np.take_along_axis(x, perm[:, None, :], axis=2).astype(np.float32)
    raise ValueError(f"background must be 'uniform' or 'shuffle', not {kind!r}")


def deletion_order(scores, seed=0):
    """Positions most-relevant-first ``(N, L) -> (N, L)`` int64, ties in a seeded random order.

    Sparse relevance (PLRP) ties most positions at exactly zero: broken by position (a stable sort), its
    deletion curve would delete one end of the window after the relevant positions, which damages ``f`` less
    than deleting those positions spread at random and scored the sparsest methods worse than random order
    (plrp-lambda 0.5 on the demo: AOPC gain -0.60 with 81% of positions at zero). Random ties make the
    curve past the relevant positions what random order gives. The keys come from their own stream
    (``default_rng([seed, 1])``), so the baselines' draws from ``default_rng(seed)`` do not change.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ties = np.random.default_rng([int(seed), 1]).random(scores.shape)
    return np.lexsort((ties, -scores), axis=-1)


def perturbation_curve(f, x, order, fractions, background, batch_size=256):
    """``f`` after replacing the first ``k = round(frac * L)`` positions of ``order`` by ``background``.

    ``f``: callable ``(n, 4, L) float32 -> (n,)``; ``x, background (N, 4, L)``; ``order (N, L)`` position
    indices. Returns ``(N, n_fractions)``.
    """
    N, _, L = x.shape
    out = np.empty((N, len(fractions)))
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(L)[None, :].repeat(N, 0), axis=1)
    for c, frac in enumerate(fractions):
        k = round(frac * L)
        deleted = (rank < k)[:, None, :]
        xp = np.where(deleted, background, x).astype(np.float32)
        out[:, c] = np.concatenate(
            [
                np.asarray(f(xp[b : b + batch_size]), dtype=np.float64).reshape(-1)
                for b in range(0, N, batch_size)
            ]
        )
    return out


def faithfulness_baseline(
    f, x, n_steps=20, max_fraction=0.2, background="uniform", n_random=3, seed=0
):
    """The part of :func:`faithfulness` that is the same for every method: random-order deletion curves.

    ``f (n, 4, L) -> (n,)``; ``x (N, 4, L)`` one-hot. The random orders and the background come from
    ``default_rng(seed)`` in the order :func:`faithfulness` draws them, so the numbers are the same as
    computing them per method. ``f`` runs once on the intact windows and ``n_steps`` times per order.
    Returns a dict: ``fractions`` ``(n_steps + 1,)``, ``f0`` ``(N,)`` (f of the intact windows),
    ``random_drop`` ``(N, n_steps + 1)`` (mean over the ``n_random`` orders of ``f(x) - f(x_k)``) and the
    parameters (``n_steps``, ``max_fraction``, ``background``, ``n_random``, ``seed``).
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    N, _, L = x.shape
    fractions = np.linspace(0, max_fraction, n_steps + 1)
    bg = _background(x, background, rng)
    intact = np.broadcast_to(np.arange(L), (N, L))  # any order: fraction 0 deletes nothing
    f0 = perturbation_curve(f, x, intact, fractions[:1], bg)[:, 0]
    rnd = []
    for _ in range(n_random):
        r_order = np.argsort(rng.random((N, L)), axis=1)
        c = perturbation_curve(f, x, r_order, fractions[1:], bg)
        rnd.append(np.column_stack([np.zeros(N), f0[:, None] - c]))
    return {
        "fractions": fractions,
        "f0": f0,
        "random_drop": np.mean(rnd, axis=0) if rnd else np.zeros((N, n_steps + 1)),
        "n_steps": n_steps,
        "max_fraction": max_fraction,
        "background": background,
        "n_random": n_random,
        "seed": seed,
    }


def faithfulness_from_baseline(f, x, scores, baseline):
    """:func:`faithfulness` of one method given the shared :func:`faithfulness_baseline` of its windows
    ``x (N, 4, L)``: only the most-relevant-first curve is run (``n_steps`` model passes over ``x``)."""
    x = np.asarray(x, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float64)
    f0, rnd = np.asarray(baseline["f0"]), np.asarray(baseline["random_drop"])
    if f0.shape != (x.shape[0],) or scores.shape != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"baseline of {f0.shape[0]} windows, scores {scores.shape}, windows {x.shape}"
        )
    fractions = np.asarray(baseline["fractions"], dtype=np.float64)
    bg = _background(x, baseline["background"], np.random.default_rng(baseline["seed"]))
    order = deletion_order(scores, baseline["seed"])
    curve = np.column_stack([f0, perturbation_curve(f, x, order, fractions[1:], bg)])
    drop = curve[:, :1] - curve
    a_rel = float(drop[:, 1:].mean())
    a_rnd = float(rnd[:, 1:].mean())
    return {
        "aopc_relevance": a_rel,
        "aopc_random": a_rnd,
        "aopc_gain": a_rel - a_rnd,
        "fractions": fractions.tolist(),
        "curve_relevance": drop.mean(0).tolist(),
        "curve_random": rnd.mean(0).tolist(),
        "f0": float(curve[:, 0].mean()),
    }


def faithfulness(
    f, x, scores, n_steps=20, max_fraction=0.2, background="uniform", n_random=3, seed=0
):
    """Most-relevant-first deletion against random order: area over the perturbation curve (AOPC).

    ``f (n, 4, L) -> (n,)`` the explained scalar; ``x (N, 4, L)`` one-hot; ``scores (N, L)`` projected
    relevance. Deletes up to ``max_fraction`` of the positions in ``n_steps`` steps. AOPC = mean over steps
    of ``f(x) - f(x_k)``, averaged over windows (in units of f). Returns a dict: ``aopc_relevance``,
    ``aopc_random`` (mean of ``n_random`` random orders), ``aopc_gain`` (their difference, > 0 when the
    relevance ranks positions better than chance), ``fractions``, ``curve_relevance``, ``curve_random``
    (mean drop per step), and ``f0`` (mean f(x)). The random part is :func:`faithfulness_baseline`
    (the same for every method: the workflow computes it once per genome and model).
    """
    base = faithfulness_baseline(f, x, n_steps, max_fraction, background, n_random, seed)
    return faithfulness_from_baseline(f, x, scores, base)


def summarise(values):
    """``nanmean`` of a per-window metric as a float (NaN when nothing is defined)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


__all__ = [
    "auprc",
    "call_accuracy",
    "deletion_order",
    "faithfulness",
    "faithfulness_baseline",
    "faithfulness_from_baseline",
    "gini",
    "inside",
    "perturbation_curve",
    "pr_curve",
    "relevance_gini",
    "rma",
    "rra",
    "site_mask",
    "summarise",
]
