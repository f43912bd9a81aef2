"""Seqlets (short spans of high relevance), positive and negative, from projected relevance.

tangermeme's ``recursive_seqlets`` calls positive seqlets only. Negative seqlets come from running it on the
negated scores; a negative seqlet that overlaps a positive one in the same window is dropped (the positive
call wins), as tangermeme's own notes advise. Its ``p-value`` is a ranking score, not an error rate.

Bounded memory: the recursive caller's null (a histogram of every position's binned score, turned into the
distribution of span sums) depends on all windows, but the calls of a window depend only on that null and
the window. :func:`call_seqlets` therefore walks the windows in blocks of rows, three times (value range,
histogram, calls), so the scores may be larger than memory (:class:`ProjectedRows` over the relevance
store); the seqlets are the same, bit for bit, as ``recursive_seqlets`` on the whole array gives (tested).
The null is built here from the block histograms (:func:`null_from_frequencies`, the same sums in the same
order as tangermeme 1.6's ``_recursive_seqlet_null``) and the calls are decoded block by block with
tangermeme's decoder.
"""

import functools
import logging

import numpy as np
import pandas as pd

log = logging.getLogger("plrp")

COLUMNS = ["example_idx", "start", "end", "attribution", "p_value", "sign"]


def project(relevance):
    """Projected relevance ``(N, L)`` float64: the relevance of the present base, ``relevance.sum(1)``."""
    relevance = np.asarray(relevance)
    if relevance.ndim != 3 or relevance.shape[1] != 4:
        raise ValueError(f"relevance must be (N, 4, L); got {relevance.shape}")
    return relevance.sum(1, dtype=np.float64)


class ProjectedRows:
    """Projected relevance ``(N, L)`` of an ``(N, 4, L)`` array read by rows (an array, a memmap or a
    :class:`lrp.genomics.store.NpyRows`): ``len()``, ``shape`` and ``block(lo, hi)`` -> rows ``[lo, hi)`` of
    :func:`project`. ``chunk_rows`` is the number of rows :func:`call_seqlets` reads at a time."""

    def __init__(self, relevance, chunk_rows):
        if len(relevance.shape) != 3 or relevance.shape[1] != 4:
            raise ValueError(f"relevance must be (N, 4, L); got {relevance.shape}")
        self.relevance, self.chunk_rows = relevance, max(1, int(chunk_rows))
        self.shape = (relevance.shape[0], relevance.shape[2])

    def __len__(self):
        return self.shape[0]

    def block(self, lo, hi):
        return project(self.relevance[lo:hi])


def _blocks(scores):
    """``(lo, hi, block (hi - lo, L) float64)`` over the rows of ``scores`` (an array or ProjectedRows)."""
    if isinstance(scores, ProjectedRows):
        n, step = len(scores), scores.chunk_rows
        for lo in range(0, n, step):
            yield lo, min(lo + step, n), scores.block(lo, min(lo + step, n))
    else:
        yield 0, len(scores), scores


def _empty():
    return pd.DataFrame(
        {
            "example_idx": np.array([], np.int64),
            "start": np.array([], np.int64),
            "end": np.array([], np.int64),
            "attribution": np.array([], np.float64),
            "p_value": np.array([], np.float64),
            "sign": np.array([], np.int8),
        }
    )


def _trim(df, scores, trim, flank):
    """Trim weak ends of positive seqlets of ``scores (N, L)``; re-sum ``attribution``."""
    if trim <= 0 or not len(df):
        return df
    L = scores.shape[1]
    starts, ends, sums = [], [], []
    for e, s, t in df[["example_idx", "start", "end"]].itertuples(index=False):
        s0, t0 = max(s + flank, 0), min(t - flank, L)
        v = scores[e, s0:t0]
        keep = np.flatnonzero(v >= trim * v.max()) if len(v) and v.max() > 0 else []
        if len(keep):
            s0, t0 = s0 + keep[0], s0 + keep[-1] + 1
        s1, t1 = max(s0 - flank, 0), min(t0 + flank, L)
        starts.append(s1)
        ends.append(t1)
        sums.append(scores[e, s1:t1].sum())
    return df.assign(start=starts, end=ends, attribution=sums)


def _merge_close(df, scores, gap, max_len):
    """Join seqlets of one sign in the same window separated by at most ``gap`` bp, while the joined span
    stays within ``max_len``: the recursive caller splits a site at its weakly relevant (degenerate)
    positions, and a fragment of a site is too short to match its database motif. ``attribution`` is
    re-summed over the joined span, ``p_value`` is the smallest of the parts."""
    df = df.sort_values(["example_idx", "start", "end"], kind="stable").reset_index(drop=True)
    rows = []
    for e, s, t, p in df[["example_idx", "start", "end", "p_value"]].itertuples(index=False):
        last = rows[-1] if rows else None
        if last and last[0] == e and s - last[2] <= gap and max(t, last[2]) - last[1] <= max_len:
            last[2], last[3] = max(t, last[2]), min(p, last[3])
        else:
            rows.append([e, s, t, p])
    out = pd.DataFrame(rows, columns=["example_idx", "start", "end", "p_value"])
    out["attribution"] = [
        scores[e, s:t].sum() for e, s, t in zip(out.example_idx, out.start, out.end)
    ]
    return out


def null_from_frequencies(f, max_len):
    """Tail probabilities of span sums of binned scores: ``rcdfs[k, i] = P(S >= i)`` for ``S`` the sum of
    ``k`` independent draws from the bin frequencies ``f (n_bins,)``; ``(max_len + 1, n_bins * max_len + 1)``.

    Each convolution output sums ``prev[i] * f[m - i]`` over ascending ``i`` from 0.0 and the tails are
    summed down from the top: the operations of tangermeme 1.6's ``_recursive_seqlet_null``, so the table is
    the same bit for bit (its zero terms change no sum). Compiled by numba (on-disk cache) at the first call.
    """
    return _null_kernel()(f, max_len)


@functools.cache
def _null_kernel():
    """:func:`_null_from_frequencies` compiled (numba is imported here: importing this module stays light)."""
    import numba

    return numba.njit(cache=True)(_null_from_frequencies)


def _null_from_frequencies(f, max_len):
    n_bins = f.shape[0]
    scores = np.zeros((max_len + 1, n_bins * max_len))
    rcdfs = np.zeros((max_len + 1, n_bins * max_len + 1))
    scores[1, :n_bins] = f
    for k in range(1, max_len + 1):
        if k > 1:
            n_prev = n_bins * (k - 1)
            for m in range(n_prev + n_bins - 1):
                acc = 0.0
                for i in range(max(m - n_bins + 1, 0), min(m + 1, n_prev)):
                    acc += scores[k - 1, i] * f[m - i]
                scores[k, m] = acc
        for i in range(n_bins * k - 1, -1, -1):
            rcdfs[k, i] = rcdfs[k, i + 1] + scores[k, i]
    return rcdfs


class _Sign:
    """The running state of one sign (+1: the scores, -1: their negation) over the blocks of rows."""

    def __init__(self, sign):
        self.sign = sign
        self.max64, self.min64 = -np.inf, np.inf  # of the signed float64 scores
        self.max32, self.min32 = None, None  # of their float32 copy, which tangermeme bins
        self.counts = None

    def x32(self, block):
        return np.ascontiguousarray(self.sign * block, dtype=np.float32)

    def extend_range(self, block):
        x = self.sign * block
        self.max64, self.min64 = max(self.max64, x.max()), min(self.min64, x.min())
        x32 = self.x32(block)
        hi, lo = x32.max(), x32.min()
        self.max32 = hi if self.max32 is None else max(self.max32, hi)
        self.min32 = lo if self.min32 is None else min(self.min32, lo)

    @property
    def empty(self):
        """No positive seqlet can exist (what ``_one_sign`` checked on the whole array)."""
        return self.max64 <= 0 or self.max64 == self.min64 or self.max32 == self.min32

    def bin_width(self, n_bins):
        return float(self.max32 - self.min32) / (n_bins - 1)

    def add_counts(self, block, n_bins):
        d = (self.x32(block).ravel() - self.min32).astype(np.float64) / self.bin_width(n_bins)
        b = np.clip(np.floor(d), 0, n_bins - 1).astype(np.int64)
        c = np.bincount(b, minlength=n_bins)
        self.counts = c if self.counts is None else self.counts + c


@functools.cache
def _tangermeme_decoder():
    """tangermeme's seqlet decoder, compiled with numba's on-disk cache.

    tangermeme compiles it with a plain ``@numba.njit``: about 13 s of CPU in every process that calls
    seqlets (every ``plrp call-motifs`` job). This is the same Python function, compiled once per
    environment and loaded from the cache afterwards (0.03 s).
    """
    import numba
    from tangermeme.seqlet import _recursive_seqlet_decode_fields

    return numba.njit(cache=True)(_recursive_seqlet_decode_fields.py_func)


def _decode(state, block, rcdfs, threshold, min_len, max_len, flank, n_bins):
    """tangermeme's decoder on one block against the null of all blocks -> its five field arrays."""
    return _tangermeme_decoder()(
        state.x32(block),
        rcdfs,
        state.min32,
        state.bin_width(n_bins),
        threshold,
        min_len,
        max_len,
        flank,
        n_bins,
    )


def _per_block(scores, df, fn, keep_order=True):
    """Apply ``fn(rows of df, block, lo)`` -> DataFrame to the rows of ``df`` of each block's windows;
    ``keep_order``: the rows ``fn`` returns (it keeps or drops rows, with their index) stay in ``df``'s order."""
    if not len(df):
        return df
    e = df["example_idx"].to_numpy()
    parts = []
    for lo, hi, block in _blocks(scores):
        sel = (e >= lo) & (e < hi)
        if sel.any():
            parts.append(fn(df[sel], block, lo))
    out = pd.concat(parts)
    if keep_order:
        position = pd.Series(np.arange(len(df)), index=df.index)
        out = out.iloc[np.argsort(position[out.index].to_numpy(), kind="stable")]
    return out


def call_seqlets(
    scores,
    threshold=0.01,
    min_len=4,
    max_len=25,
    flank=0,
    negative=True,
    n_bins=1000,
    max_seqlets=None,
    trim=0.1,
    merge_gap=4,
):
    """Seqlets of projected relevance ``scores (N, L)``.

    ``scores``: an ``(N, L)`` array, or :class:`ProjectedRows` (read a block of rows at a time: memory is
    set by the block and the seqlets, not by ``N``). Returns a DataFrame ``example_idx, start, end`` (0-based,
    half-open, window coordinates), ``attribution`` (signed relevance sum over the span), ``p_value``
    (recursive-seqlet rank score), ``sign`` (+1 / -1), sorted by example, start. ``max_seqlets`` keeps the
    strongest by ``|attribution|``. The recursive caller pads a peak with up to ``min_len - 1`` weak
    positions on each side (any span of ``min_len`` holding a peak base passes); ``trim`` drops end
    positions whose signed score is below ``trim * max`` of the span (before ``flank`` is added; 0 keeps the
    spans as called). Seqlets of one sign at most ``merge_gap`` bp apart in the same window are then joined
    into one (up to ``max_len``; -1: off).
    """
    if not isinstance(scores, ProjectedRows):
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2:
            raise ValueError(f"scores must be (N, L); got {scores.shape}")
    L = scores.shape[1]
    if not threshold <= 1:
        raise ValueError(f"threshold must be a p-value of at most 1; got {threshold}.")
    states = [_Sign(1)] + ([_Sign(-1)] if negative else [])
    n_rows = 0
    for _, _, block in _blocks(scores):  # pass 1: value ranges
        if not np.isfinite(block).all():
            raise ValueError("scores contain NaN or infinite values")
        n_rows += len(block)
        if block.size:
            for st in states:
                st.extend_range(block)
    live = [st for st in states if n_rows and L and not st.empty]
    for _, _, block in _blocks(scores) if live else ():  # pass 2: histograms
        for st in live:
            st.add_counts(block, n_bins)
    fields = {st.sign: [] for st in states}
    tables = {
        st.sign: null_from_frequencies(st.counts.astype(np.float64) / (n_rows * L), max_len)
        for st in live
    }
    for lo, _, block in _blocks(scores) if live else ():  # pass 3: calls
        for st in live:
            f = _decode(st, block, tables[st.sign], threshold, min_len, max_len, flank, n_bins)
            fields[st.sign].append((f[0] + lo, *f[1:]))
    parts = {}
    for st in states:
        df = _sign_frame(fields[st.sign])
        df = _per_block(
            scores,
            df,
            lambda d, b, lo, s=st.sign: _shift(_trim(_shift(d, -lo), s * b, trim, flank), lo),
        )
        df = _merge_blocks(scores, df, st.sign, merge_gap, max_len + 2 * flank)
        parts[st.sign] = df[df["attribution"] > 0][COLUMNS[:5]].assign(sign=st.sign)
    pos = parts[1]
    out = [pos]
    if negative:
        neg = parts[-1].assign(attribution=-parts[-1]["attribution"])
        if len(neg) and len(pos):
            neg = _per_block(scores, neg, lambda d, b, lo: _not_covered(d, pos, lo, len(b), L))
        out.append(neg)
    df = (
        pd.concat([p for p in out if len(p)], ignore_index=True)
        if any(len(p) for p in out)
        else _empty()
    )
    df = df.astype(
        {
            "example_idx": np.int64,
            "start": np.int64,
            "end": np.int64,
            "attribution": np.float64,
        }
    )
    df["p_value"] = df["p_value"].astype(np.float64)
    df["sign"] = df["sign"].astype(np.int8)
    # Flanks may reach past the window: clip to it.
    df["start"] = df["start"].clip(lower=0)
    df["end"] = df["end"].clip(upper=L)
    if max_seqlets is not None and len(df) > max_seqlets:
        keep = np.argsort(-df["attribution"].abs().to_numpy(), kind="stable")[:max_seqlets]
        df = df.iloc[np.sort(keep)]
    df = df.sort_values(["example_idx", "start", "end"], kind="stable").reset_index(drop=True)
    log.info(
        "seqlets: %d positive, %d negative",
        (df["sign"] > 0).sum(),
        (df["sign"] < 0).sum(),
    )
    return df[COLUMNS]


def _sign_frame(fields):
    """The decoded blocks of one sign as tangermeme's table: in call order, then sorted by p-value."""
    columns = ["example_idx", "start", "end", "attribution", "p_value"]
    if not fields or not sum(len(f[0]) for f in fields):
        return _empty().drop(columns="sign")
    df = pd.DataFrame({c: np.concatenate([f[k] for f in fields]) for k, c in enumerate(columns)})
    return df.sort_values("p_value").reset_index(drop=True)


def _shift(df, lo):
    return df.assign(example_idx=df["example_idx"] + lo) if lo else df


def _merge_blocks(scores, df, sign, gap, max_len):
    """:func:`_merge_close` over the blocks (a merge never crosses windows, so blocks are independent)."""
    if gap < 0 or len(df) < 2:
        return df
    df = df.sort_values(["example_idx", "start", "end"], kind="stable").reset_index(drop=True)
    out = _per_block(
        scores,
        df,
        lambda d, b, lo: _shift(_merge_close(_shift(d, -lo), sign * b, gap, max_len), lo),
    )
    return out.reset_index(drop=True)


def _not_covered(neg, pos, lo, n, L):
    """The negative seqlets of windows ``[lo, lo + n)`` that overlap no positive one of their window."""
    covered = np.zeros((n, L), dtype=bool)
    p = pos[(pos["example_idx"] >= lo) & (pos["example_idx"] < lo + n)]
    for e, s, t in p[["example_idx", "start", "end"]].itertuples(index=False):
        covered[e - lo, max(s, 0) : min(t, L)] = True
    csum = np.concatenate([np.zeros((n, 1), np.int64), covered.cumsum(1)], 1)
    e = neg["example_idx"].to_numpy() - lo
    s = np.clip(neg["start"].to_numpy(), 0, L)
    t = np.clip(neg["end"].to_numpy(), 0, L)
    return neg[(csum[e, t] - csum[e, s]) == 0]
