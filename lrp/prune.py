"""Relevance pruning per sequence and layer (PLRP), by relevance mass.

For one sequence with positive entries P and negative entries N of R, sorted ascending by |R|, the pruned set
is the longest prefix whose cumulative |R| is ``<= p * T`` (T: the total mass of that sign). Ties are broken
by position (a stable sort), so the pruned mass is exactly that of the longest such prefix.

Sorting every hidden representation (64 filters x 1,000 bp x 64 sequences) would cost more than the
backward pass itself, so long rows avoid the full sort, exactly:
a sample-select brackets the threshold with a sorted subsample, checks the masses below and above the bracket
exactly and sorts only the entries inside it; rows where the check fails (heavy tails fool the subsample)
find the kept set from the top with ``topk`` and a growing k; the rest use the full sort.
"""

import torch

FULL_SORT_BELOW = 8192  # row length under which a full sort is cheap enough
SAMPLE = 1024  # subsample per row that brackets the threshold
MARGIN = 24  # subsample positions on each side of the estimated threshold


def _prefix_mask_sorted(v, p):
    """Full stable sort. v: (N, D) >= 0 -> (pruned mask (N, D), pruned mass (N,) float64)."""
    sv, order = torch.sort(v, dim=1, stable=True)
    cs = torch.cumsum(sv.double(), dim=1)
    pruned_sorted = (cs <= p * cs[:, -1:]) & (sv > 0)
    mass = (sv.double() * pruned_sorted).sum(1)
    return torch.zeros_like(pruned_sorted).scatter_(1, order, pruned_sorted), mass


def _prefix_mask_select(v, p):
    """Exact sample-select for long rows; the same set as :func:`_prefix_mask_sorted` up to rounding."""
    n, d = v.shape
    total = v.sum(1).double()
    limit = p * total
    stride = max(d // SAMPLE, 1)
    sample, _ = torch.sort(v[:, ::stride], dim=1)
    est = torch.cumsum(sample.double(), 1) * stride
    k = torch.searchsorted(est, limit[:, None]).squeeze(1)
    last = sample.shape[1] - 1
    t_lo = sample.gather(1, (k - MARGIN).clamp(0, last)[:, None])
    t_hi = sample.gather(1, (k + MARGIN).clamp(0, last)[:, None])
    t_lo = t_lo.masked_fill((k - MARGIN)[:, None] < 0, 0)
    t_hi = t_hi.masked_fill((k + MARGIN)[:, None] > last, float("inf"))
    below = v < t_lo
    lt_hi = v < t_hi
    band = lt_hi ^ below
    mass_lo = torch.where(below, v, 0).sum(1).double()
    mass_hi = torch.where(lt_hi, v, 0).sum(1).double()
    ok = (mass_lo <= limit) & ((mass_hi > limit) | torch.isinf(t_hi[:, 0]))
    pruned = below  # entries below the bracket; zeros are removed by the caller (prune_plan)
    mass = mass_lo
    rows, cols = band.nonzero(as_tuple=True)
    if rows.numel():
        counts = torch.bincount(rows, minlength=n)
        starts = torch.cumsum(counts, 0) - counts
        slots = torch.arange(rows.numel(), device=v.device) - starts[rows]
        width = int(counts.max())
        vals = torch.full((n, width), float("inf"), dtype=v.dtype, device=v.device)
        where = torch.zeros((n, width), dtype=torch.long, device=v.device)
        vals[rows, slots] = v[rows, cols]
        where[rows, slots] = cols
        sv, order = torch.sort(vals, dim=1, stable=True)  # position order in: ties stay by position
        finite = sv != float("inf")
        cs = mass_lo[:, None] + torch.cumsum(torch.where(finite, sv, 0).double(), 1)
        take = (cs <= limit[:, None]) & finite
        r_idx, s_idx = take.nonzero(as_tuple=True)
        pruned[r_idx, where.gather(1, order)[r_idx, s_idx]] = True
        mass = mass + torch.where(take, sv, 0).double().sum(1)
    if not bool(ok.all()):
        bad = (~ok).nonzero(as_tuple=True)[0]
        pruned[bad], mass[bad] = _prefix_mask_top(v[bad], p)
    return pruned, mass


def _prefix_mask_top(v, p):
    """Exact, from the top: when a few large entries hold most of the mass (the usual case for relevance),
    the kept set is the smallest top-k whose mass reaches ``(1 - p) T``, found with ``topk`` and a growing k.
    Ties at the threshold are resolved as the stable ascending sort does (lower positions pruned first).
    Rows whose kept set is large fall back to the full sort."""
    n, d = v.shape
    total = v.sum(1).double()
    need = (1 - p) * total
    pruned = torch.zeros_like(v, dtype=torch.bool)
    mass = torch.zeros(n, dtype=torch.float64, device=v.device)
    todo = torch.arange(n, device=v.device)
    k = 256
    while todo.numel() and k < d // 4:
        top, _ = torch.topk(v[todo], k, dim=1)
        cum = torch.cumsum(top.double(), 1)
        # the prefix rule in descending terms: keep the smallest j with T - c_j <= p T (within rounding)
        reach = cum >= need[todo, None] - 1e-12 * total[todo, None]
        done = reach[:, -1]
        if bool(done.any()):
            rows = todo[done]
            j = reach[done].float().argmax(1)  # index of the last kept entry in descending order
            t = top[done].gather(1, j[:, None])  # the threshold value
            vv = v[rows]
            above = vv > t
            ties = vv == t
            n_keep_ties = (j + 1) - above.sum(1)  # kept entries equal to t
            # stable ascending order prunes the lowest positions first: keep the highest-positioned ties
            from_right = torch.flip(torch.cumsum(torch.flip(ties, [1]), 1), [1])
            keep = above | (ties & (from_right <= n_keep_ties[:, None]))
            pr = ~keep & (vv > 0)
            pruned[rows] = pr
            mass[rows] = torch.where(pr, vv, 0).sum(1).double()
        todo = todo[~done]
        k *= 4
    if todo.numel():
        pruned[todo], mass[todo] = _prefix_mask_sorted(v[todo], p)
    return pruned, mass


def _prune_one_sign(v, p):
    """v: (N, D) non-negative masses -> (pruned mask (N, D), pruned mass (N,) float64)."""
    if p <= 0:
        return torch.zeros_like(v, dtype=torch.bool), torch.zeros(v.shape[0], dtype=torch.float64)
    if v.shape[1] < FULL_SORT_BELOW:
        return _prefix_mask_sorted(v, p)
    return _prefix_mask_select(v, p)


def pruning_mask(relevance, p_pos, p_neg):
    """Which entries of ``relevance`` (N, ...) PLRP prunes; a bool tensor of the same shape."""
    return prune_plan(relevance, p_pos, p_neg)[0]


def prune_plan(relevance, p_pos, p_neg):
    """``(mask, lam_pos, lam_neg)``: the pruned entries (relevance's shape) and, per sequence (N,), the
    factors that restore the positive and the negative mass: ``T / (T - pruned mass)``."""
    r = relevance.reshape(relevance.shape[0], -1)
    pos, neg = r.clamp(min=0), r.neg().clamp_(min=0)
    mask_pos, mass_pos = _prune_one_sign(pos, p_pos)
    mask_neg, mass_neg = _prune_one_sign(neg, p_neg)
    t_pos, t_neg = pos.sum(1).double(), neg.sum(1).double()
    lam_pos = torch.where(t_pos > mass_pos, t_pos / (t_pos - mass_pos).clamp(min=1e-300), 1.0)
    lam_neg = torch.where(t_neg > mass_neg, t_neg / (t_neg - mass_neg).clamp(min=1e-300), 1.0)
    mask = ((mask_pos | mask_neg) & (r != 0)).reshape(relevance.shape)
    return mask, lam_pos.to(relevance.dtype), lam_neg.to(relevance.dtype)


def prune_lambda(relevance, mask, lam_pos=None, lam_neg=None):
    """PLRP-λ: zero the pruned entries and rescale the kept ones so that the positive and the negative
    relevance mass of each sequence are each conserved. relevance, mask: (N, ...); lam_*: (N,) from
    :func:`prune_plan` (computed here when not given)."""
    r = relevance.reshape(relevance.shape[0], -1)
    m = mask.reshape(r.shape)
    kept = r.masked_fill(m, 0)
    if lam_pos is None:
        t_pos, t_neg = r.clamp(min=0).sum(1), r.clamp(max=0).sum(1)
        k_pos, k_neg = kept.clamp(min=0).sum(1), kept.clamp(max=0).sum(1)
        lam_pos = torch.where(k_pos != 0, t_pos / k_pos.where(k_pos != 0, 1), 1.0)
        lam_neg = torch.where(k_neg != 0, t_neg / k_neg.where(k_neg != 0, 1), 1.0)
    scale = torch.where(kept > 0, lam_pos[:, None], lam_neg[:, None])
    return (kept * scale).reshape(relevance.shape)
