"""Seqlets (short spans of high relevance), positive and negative, from projected relevance.

tangermeme's ``recursive_seqlets`` calls positive seqlets only. Negative seqlets come from running it on the
negated scores; a negative seqlet that overlaps a positive one in the same window is dropped (the positive
call wins), as tangermeme's own notes advise. Its ``p-value`` is a ranking score, not an error rate.
"""

import logging

import numpy as np
import pandas as pd

log = logging.getLogger("plrp")

COLUMNS = ["example_idx", "start", "end", "attribution", "p_value", "sign"]


def project(relevance):
    """Projected relevance ``(N, L)``: the relevance of the present base, ``relevance.sum(1)``."""
    relevance = np.asarray(relevance)
    if relevance.ndim != 3 or relevance.shape[1] != 4:
        raise ValueError(f"relevance must be (N, 4, L); got {relevance.shape}")
    return relevance.sum(1, dtype=np.float64)


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
    if gap < 0 or len(df) < 2:
        return df
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


def _one_sign(scores, threshold, min_len, max_len, flank, n_bins, trim=0.0, merge_gap=-1):
    """Positive seqlets of ``scores (N, L)`` as a DataFrame, or an empty one."""
    from tangermeme.seqlet import recursive_seqlets

    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if scores.size == 0 or scores.max() <= 0 or scores.max() == scores.min():
        return _empty().drop(columns="sign")
    df = recursive_seqlets(
        np.ascontiguousarray(scores, dtype=np.float32),
        threshold=threshold,
        min_seqlet_len=min_len,
        max_seqlet_len=max_len,
        additional_flanks=flank,
        n_bins=n_bins,
    )
    df = _trim(df.rename(columns={"p-value": "p_value"}), scores, trim, flank)
    df = _merge_close(df, scores, merge_gap, max_len + 2 * flank)
    # A span of zero or negative sum is not a positive seqlet, whatever its rank.
    df = df[df["attribution"] > 0]
    return df[["example_idx", "start", "end", "attribution", "p_value"]]


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

    Returns a DataFrame ``example_idx, start, end`` (0-based, half-open, window coordinates),
    ``attribution`` (signed relevance sum over the span), ``p_value`` (recursive-seqlet rank score),
    ``sign`` (+1 / -1), sorted by example, start. ``max_seqlets`` keeps the strongest by ``|attribution|``.
    The recursive caller pads a peak with up to ``min_len - 1`` weak positions on each side (any span of
    ``min_len`` holding a peak base passes); ``trim`` drops end positions whose signed score is below
    ``trim * max`` of the span (before ``flank`` is added; 0 keeps the spans as called). Seqlets of one sign
    at most ``merge_gap`` bp apart in the same window are then joined into one (up to ``max_len``; -1: off).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, L); got {scores.shape}")
    L = scores.shape[1]
    pos = _one_sign(scores, threshold, min_len, max_len, flank, n_bins, trim, merge_gap).assign(
        sign=1
    )
    parts = [pos]
    if negative:
        neg = _one_sign(-scores, threshold, min_len, max_len, flank, n_bins, trim, merge_gap)
        neg = neg.assign(attribution=-neg["attribution"], sign=-1)
        if len(neg) and len(pos):
            # Drop a negative seqlet overlapping a positive one of the same window.
            covered = np.zeros(scores.shape, dtype=bool)
            for e, s, t in pos[["example_idx", "start", "end"]].itertuples(index=False):
                covered[e, max(s, 0) : min(t, L)] = True
            csum = np.concatenate([np.zeros((scores.shape[0], 1), np.int64), covered.cumsum(1)], 1)
            e = neg["example_idx"].to_numpy()
            s = np.clip(neg["start"].to_numpy(), 0, L)
            t = np.clip(neg["end"].to_numpy(), 0, L)
            neg = neg[(csum[e, t] - csum[e, s]) == 0]
        parts.append(neg)
    df = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
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
