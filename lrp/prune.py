"""Relevance pruning per sequence and layer (PLRP), by relevance mass.

For one sequence with positive entries P and negative entries N of R, sorted ascending by |R|, the pruned set
is the longest prefix whose cumulative |R| is ``<= p * T`` (T: the total mass of that sign). Ties are broken
by position (a stable sort), so the pruned mass is exactly that of the longest such prefix.
"""

import torch


def _prune_one_sign(v, p):
    """v: (N, D) non-negative masses. Returns a bool mask (N, D) of the pruned entries."""
    if p <= 0:
        return torch.zeros_like(v, dtype=torch.bool)
    sv, order = torch.sort(v, dim=1, stable=True)
    cs = torch.cumsum(sv.double(), dim=1)
    pruned_sorted = (cs <= p * cs[:, -1:]) & (sv > 0)
    return torch.zeros_like(pruned_sorted).scatter_(1, order, pruned_sorted)


def pruning_mask(relevance, p_pos, p_neg):
    """Which entries of ``relevance`` (N, ...) PLRP prunes; a bool tensor of the same shape."""
    r = relevance.reshape(relevance.shape[0], -1)
    mask = _prune_one_sign(r.clamp(min=0), p_pos) | _prune_one_sign((-r).clamp(min=0), p_neg)
    return mask.reshape(relevance.shape)


def prune_lambda(relevance, mask):
    """PLRP-λ: zero the pruned entries and rescale the kept ones so that the positive and the negative
    relevance mass of each sequence are each conserved exactly. relevance, mask: (N, ...)."""
    r = relevance.reshape(relevance.shape[0], -1)
    m = mask.reshape(r.shape)
    pos, neg = r.clamp(min=0), r.clamp(max=0)
    kept_pos, kept_neg = pos.masked_fill(m, 0), neg.masked_fill(m, 0)
    t_pos, t_neg = pos.sum(1, keepdim=True), neg.sum(1, keepdim=True)
    k_pos, k_neg = kept_pos.sum(1, keepdim=True), kept_neg.sum(1, keepdim=True)
    lam_pos = torch.where(k_pos != 0, t_pos / k_pos.where(k_pos != 0, 1), 1.0)
    lam_neg = torch.where(k_neg != 0, t_neg / k_neg.where(k_neg != 0, 1), 1.0)
    return (kept_pos * lam_pos + kept_neg * lam_neg).reshape(relevance.shape)
