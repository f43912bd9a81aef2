"""Relevance pruning per sequence and layer (PLRP), by relevance mass.

For one sequence with positive entries P and negative entries N of R, sorted ascending by |R|, the pruned set
is the longest prefix whose cumulative |R| is ``<= p * T`` (T: the total mass of that sign). Ties are broken
by position (a stable sort), so the pruned mass is exactly that of the longest such prefix.

Sorting every hidden representation (64 filters x 1,000 bp x 64 sequences) would cost several times the
backward pass, so no row is sorted. The bits of a float are ordered like its magnitude, so the sign, the
exponent and the top :data:`MANTISSA_BITS` of the mantissa put each entry in a *bucket* of magnitudes
(a relative width of ``2**-MANTISSA_BITS``) in one integer shift. A histogram of relevance mass over the
buckets, one ``index_add_`` for the whole batch in float64, gives per sequence and sign the buckets pruned
whole, and the one bucket where the cumulative mass crosses ``p T``. Only the entries of that bucket (a
sliver of the row) are sorted, stably, to finish the prefix exactly. The result is the set of the full
sort, up to float64 rounding of the masses.
"""

import torch

MANTISSA_BITS = 4  # fastest of 3..6 on 2 CPU threads and on an H100 (benchmarks/README.md)
_SHIFT = 23 - MANTISSA_BITS  # float32: 23 mantissa bits
_HALF = 1 << (31 - _SHIFT)  # buckets per sign: 8 exponent bits + MANTISSA_BITS
_CHUNK = 1 << 18  # entries per float64 chunk of the histogram on the CPU (2 MiB)


def _bucket_ids(r):
    """r (N, D) -> (N, D) int32: each entry's bucket, numbered across the batch.

    Per row, buckets ``[0, _HALF)`` hold the negative entries and ``[_HALF, 2 _HALF)`` the positive ones, each
    ascending by magnitude; row ``i`` adds ``2 _HALF i``. Zeros fall in the first bucket of their sign.
    """
    bits = r.to(torch.float32).view(torch.int32)
    # an arithmetic shift maps negatives (sign bit set) to (|bits| >> _SHIFT) - _HALF
    offsets = torch.arange(r.shape[0], device=r.device, dtype=torch.int32) * (2 * _HALF) + _HALF
    return (bits >> _SHIFT).add_(offsets[:, None])


def prune_scale(relevance, p_pos, p_neg):
    """PLRP-λ as a factor: ``relevance * prune_scale(...)`` prunes and rescales each sequence.

    relevance: (N, ...). Returns a tensor of its shape and dtype: 0 on the pruned entries, ``λ+ = T+ / (T+ -
    pruned positive mass)`` on the kept positive ones and ``λ-`` likewise on the kept negative ones. Zeros
    get some factor (0 or λ): they are never counted as pruned (see :func:`mask_of`). ``p_pos = p_neg = 0``
    gives ones.
    """
    if (p_pos <= 0 and p_neg <= 0) or relevance.numel() == 0:
        return torch.ones_like(relevance)
    n = relevance.shape[0]
    r = relevance.reshape(n, -1)
    dev = r.device
    gid = _bucket_ids(r)
    hist = torch.zeros(n * 2 * _HALF, dtype=torch.float64, device=dev)
    # on the CPU a few rows at a time: their float64 copy stays in cache and is no fresh page-faulted buffer
    rows = n if r.is_cuda else max(1, _CHUNK // max(r.shape[1], 1))
    for lo in range(0, n, rows):
        hist.index_add_(0, gid[lo : lo + rows].reshape(-1), r[lo : lo + rows].reshape(-1).double())
    hist = hist.view(n, 2, _HALF)
    # [:, 0]: the negative mass (as negative sums), [:, 1]: the positive
    hist[:, 0].neg_()
    cum = hist.cumsum(-1)
    total = cum[..., -1]  # (N, 2): T-, T+
    p = torch.tensor([p_neg, p_pos], dtype=torch.float64, device=dev)
    limit = total * p
    # buckets pruned whole: those whose cumulative mass stays within p T; the next one is crossed
    cut = (cum <= limit[..., None]).sum(-1)
    cut = torch.where(p > 0, cut, 0)
    below = torch.where(cut > 0, cum.gather(-1, (cut - 1).clamp(min=0)[..., None])[..., 0], 0.0)
    crossed = (p > 0) & (cut < _HALF)

    # finish the crossed bucket of each (sequence, sign): its entries in stable ascending order. No step
    # but ``nonzero`` waits on the device.
    in_band = torch.zeros(n, 2, _HALF + 1, dtype=torch.bool, device=dev)  # slot _HALF: none crossed
    in_band.scatter_(-1, torch.where(crossed, cut, _HALF)[..., None], True)
    in_band = in_band[..., :_HALF].reshape(-1)
    flat = in_band.index_select(0, gid.view(-1)).nonzero().squeeze(1)  # positions, ascending
    band_gid = gid.view(-1)[flat].long()
    mag = r.reshape(-1)[flat].abs().double()
    # by bucket, then magnitude, then position
    order = torch.argsort(mag, stable=True)
    order = order[torch.argsort(band_gid[order], stable=True)]
    flat, band_gid, mag = flat[order], band_gid[order], mag[order]
    seg = band_gid // _HALF  # sequence * 2 + sign
    # Cumulative mass within each bucket from one cumsum over all of them: each bucket's magnitudes are
    # first scaled by a power of two (exact) into [1, 2), so buckets far apart in size lose nothing to
    # rounding; a bucket's sum restarts at its first entry.
    exponent = (band_gid % _HALF) >> MANTISSA_BITS  # the float32 biased exponent of the bucket
    unit = torch.ldexp(torch.ones_like(mag), (exponent - 127).clamp(min=-126))
    x = mag / unit
    cs = x.cumsum(0)
    pos = torch.arange(seg.numel(), device=dev)
    starts = torch.ones_like(seg, dtype=torch.bool)
    starts[1:] = seg[1:] != seg[:-1]
    head = torch.cummax(torch.where(starts, pos, 0), 0).values
    within = cs - cs[head] + x[head]
    room = (limit - below).view(-1)[seg] / unit  # mass left under p T, in the bucket's unit
    take = (within <= room) & (mag > 0)
    pruned_mass = below.reshape(-1).index_add(0, seg, torch.where(take, mag, 0.0)).view(n, 2)

    lam = torch.where(total > pruned_mass, total / (total - pruned_mass).clamp(min=1e-300), 1.0)
    buckets = torch.arange(_HALF, device=dev)
    table = torch.where(buckets < cut[..., None], 0.0, lam[..., None]).to(relevance.dtype)
    scale = table.view(-1).index_select(0, gid.view(-1))
    # the crossed buckets' entries got their sign's factor from the table; zero those pruned
    scale.index_put_((flat,), torch.where(take, 0.0, lam.view(-1)[seg]).to(scale.dtype))
    return scale.view(relevance.shape)


def pruning_mask(relevance, p_pos, p_neg):
    """Which entries of ``relevance`` (N, ...) PLRP prunes; a bool tensor of the same shape."""
    return mask_of(relevance, prune_scale(relevance, p_pos, p_neg))


def mask_of(relevance, scale):
    """The pruned entries given :func:`prune_scale`'s factor: zeroed, and not zero to begin with."""
    return (scale == 0) & (relevance != 0)


def prune_lambda(relevance, mask):
    """Zero the masked entries and rescale the kept ones so that each sequence's positive and negative
    relevance mass are each conserved. relevance, mask: (N, ...). (PLRP-M uses it on what a consumer without
    weights, such as a residual skip, sends: its own masses, with the set chosen on the total.)"""
    if relevance.numel() == 0:
        return relevance.clone()
    r = relevance.reshape(relevance.shape[0], -1)
    kept = r.masked_fill(mask.reshape(r.shape), 0)
    t_pos, t_neg = r.clamp(min=0).sum(1), r.clamp(max=0).sum(1)
    k_pos, k_neg = kept.clamp(min=0).sum(1), kept.clamp(max=0).sum(1)
    lam_pos = torch.where(k_pos != 0, t_pos / k_pos.where(k_pos != 0, 1), 1.0)
    lam_neg = torch.where(k_neg != 0, t_neg / k_neg.where(k_neg != 0, 1), 1.0)
    scale = torch.where(kept > 0, lam_pos[:, None], lam_neg[:, None])
    return (kept * scale).reshape(relevance.shape)
