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

On the CPU a numba kernel does the same per row in three passes over the row while it sits in cache (the
histogram, the crossed bucket's entries, the pruned and rescaled output), several times faster than the
tensor ops; on a GPU (and for half precision) the tensor ops run, with one wait on the device per call.
Both make the same decisions, bucket for bucket (tested).
"""

import numba
import numpy as np
import torch

from lrp.engine import kernels

# the tensor ops were fastest with 4 of 3..6 on 2 CPU threads and on an H100 (benchmarks/README.md)
MANTISSA_BITS = 4
_SHIFT = 23 - MANTISSA_BITS  # float32: 23 mantissa bits
_HALF = 1 << (31 - _SHIFT)  # buckets per sign: 8 exponent bits + MANTISSA_BITS
_CHUNK = 1 << 18  # entries per float64 chunk of the histogram on the CPU (2 MiB)


def _bucket_ids(r):
    """r (N, D) -> (N, D) int32: each entry's bucket, numbered across the batch.

    Per row, buckets ``[0, _HALF)`` hold the negative entries and ``[_HALF, 2 _HALF)`` the positive ones, each
    ascending by magnitude; row ``i`` adds ``2 _HALF i``. Zeros fall in the first bucket of their sign.
    """
    bits = r.to(torch.float32).contiguous().view(torch.int32)
    # an arithmetic shift maps negatives (sign bit set) to (|bits| >> _SHIFT) - _HALF
    offsets = torch.arange(r.shape[0], device=r.device, dtype=torch.int32) * (2 * _HALF) + _HALF
    return (bits >> _SHIFT).add_(offsets[:, None])


def prune(relevance, p_pos, p_neg):
    """PLRP-λ: per sequence, zero the pruned entries and rescale the kept ones of each sign.

    relevance: (N, ...). Returns a new tensor of its shape and dtype: 0 on the pruned entries, the entry times
    ``λ+ = T+ / (T+ - pruned positive mass)`` on the kept positive ones and times ``λ-`` likewise on the kept
    negative ones. ``p_pos = p_neg = 0`` returns a copy.
    """
    if (p_pos <= 0 and p_neg <= 0) or relevance.numel() == 0:
        return relevance.clone()
    if kernels.usable(relevance):
        return _prune_cpu(relevance, p_pos, p_neg)
    return relevance * _prune_scale(relevance, p_pos, p_neg)


def _prune_cpu(relevance, p_pos, p_neg):
    r = relevance.reshape(relevance.shape[0], -1).contiguous()
    bits = (r if r.dtype == torch.float32 else r.float()).view(torch.int32)
    out = torch.empty_like(r)
    kernels.use_torch_threads()
    _prune_rows(bits.numpy(), r.numpy(), float(p_pos), float(p_neg), out.numpy())
    return out.view(relevance.shape)


def _prune_scale(relevance, p_pos, p_neg):
    """The tensor-op path: the factor that :func:`prune` multiplies ``relevance`` (N, ...) by; 0 on the
    pruned entries, λ of their sign elsewhere (zeros get 0 or λ)."""
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
    return mask_of(relevance, prune(relevance, p_pos, p_neg))


def mask_of(relevance, pruned):
    """The pruned entries given :func:`prune`'s output: zeroed, and not zero to begin with (a kept entry is
    multiplied by λ >= 1, so it stays nonzero)."""
    return (pruned == 0) & (relevance != 0)


def zero_pruned(x, relevance, pruned):
    """``x`` with the entries that :func:`prune` pruned from ``relevance`` set to 0 (PLRP-M's kept activations).
    x, relevance, pruned: (N, ...) of one shape."""
    if kernels.usable(x, relevance, pruned):
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        _run(_zero_pruned_rows, relevance, pruned, x, out)
        return out
    return x.masked_fill(mask_of(relevance, pruned), 0)


def rescale_kept(x, relevance, pruned):
    """``x`` with the entries that :func:`prune` pruned from ``relevance`` set to 0 and the kept ones rescaled
    per sequence and sign so that ``x``'s own positive and negative masses are conserved (where a sign keeps
    no entry, nothing to rescale). PLRP-M uses it on what a consumer without weights (a residual skip) sends.
    x, relevance, pruned: (N, ...) of one shape."""
    if x.numel() == 0:
        return x.clone()
    if kernels.usable(x, relevance, pruned):
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        _run(_rescale_kept_rows, relevance, pruned, x, out)
        return out
    v = x.reshape(x.shape[0], -1)
    kept = v.masked_fill(mask_of(relevance, pruned).reshape(v.shape), 0)
    f64 = torch.float64
    totals, kept_totals = (
        torch.stack([t.clamp(max=0).sum(1, dtype=f64), t.clamp(min=0).sum(1, dtype=f64)])
        for t in (v, kept)
    )
    lam = torch.where(kept_totals != 0, totals / kept_totals.where(kept_totals != 0, 1), 1.0)
    lam = lam.to(x.dtype)  # (2, N): negative, positive
    return (kept * torch.where(kept > 0, lam[1][:, None], lam[0][:, None])).reshape(x.shape)


def _run(kernel, *tensors):
    """Call a row kernel on (N, D) contiguous numpy views of ``tensors``; the last one is written."""
    kernels.use_torch_threads()
    views = [t.reshape(t.shape[0], -1) for t in tensors]
    *inputs, out = views
    kernel(*(v.contiguous().numpy() for v in inputs), out.numpy())


@numba.njit(parallel=True, cache=True, nogil=True)
def _zero_pruned_rows(relevance, pruned, x, out):
    n, d = x.shape
    for i in numba.prange(n):
        for j in range(d):
            out[i, j] = 0 if pruned[i, j] == 0 and relevance[i, j] != 0 else x[i, j]


@numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc"})
def _rescale_kept_rows(relevance, pruned, x, out):
    n, d = x.shape
    for i in numba.prange(n):
        total_pos = total_neg = kept_pos = kept_neg = 0.0  # float64 sums
        for j in range(d):
            v = np.float64(x[i, j])
            pos, neg = max(v, 0.0), min(v, 0.0)
            keep = (pruned[i, j] != 0) | (relevance[i, j] == 0)
            total_pos += pos
            total_neg += neg
            kept_pos += pos if keep else 0.0
            kept_neg += neg if keep else 0.0
        lam = np.ones(2, x.dtype)  # cast to x's type first, as the tensor path does
        if kept_pos != 0:
            lam[1] = total_pos / kept_pos
        if kept_neg != 0:
            lam[0] = total_neg / kept_neg
        lam_pos, lam_neg = lam[1], lam[0]
        for j in range(d):
            v = x[i, j]
            keep = (pruned[i, j] != 0) | (relevance[i, j] == 0)
            out[i, j] = v * (lam_pos if v > 0 else lam_neg) if keep else 0


# compiled on first use, cached next to this file
@numba.njit(parallel=True, cache=True, nogil=True)
def _prune_rows(bits, values, p_pos, p_neg, out):
    """PLRP-λ of each row: values (N, D) float32/64, bits (N, D) int32 (the float32 bits of values), out
    (N, D) like values; rows in parallel. An entry's key is its bucket, ``bits >> _SHIFT``, plus ``_HALF``:
    keys ``[0, _HALF)`` hold the negative entries, ``[_HALF, 2 _HALF)`` the positive, each ascending by
    magnitude (an arithmetic shift, as in :func:`_bucket_ids`)."""
    n, d = values.shape
    for i in numba.prange(n):
        bit, val = bits[i], values[i]
        # pass 1: relevance mass per key
        hist = np.zeros(2 * _HALF, np.float64)
        for j in range(d):
            hist[(bit[j] >> _SHIFT) + _HALF] += abs(val[j])
        total, p = np.empty(2), np.empty(2)  # per sign: negative, positive
        total[0], total[1], p[0], p[1] = hist[:_HALF].sum(), hist[_HALF:].sum(), p_neg, p_pos
        limit = total * p
        # per sign: the buckets below cut are pruned whole, bucket cut is crossed
        cut = np.zeros(2, np.int64)
        below = np.zeros(2)  # their mass
        for s in range(2):
            if p[s] > 0:
                k, mass = 0, 0.0
                while k < _HALF and mass + hist[s * _HALF + k] <= limit[s]:
                    mass += hist[s * _HALF + k]
                    k += 1
                cut[s], below[s] = k, mass
        # the keys pruned whole: [0, lo_neg) and [_HALF, hi_pos)
        lo_neg, hi_pos = cut[0], _HALF + cut[1]
        band = np.full(2, -1, np.int64)  # the crossed keys (-1: none)
        for s in range(2):
            if p[s] > 0 and cut[s] < _HALF:
                band[s] = s * _HALF + cut[s]
        band_neg, band_pos = band[0], band[1]
        # pass 2: the entries of the crossed buckets, in position order
        idx = np.empty(d, np.int64)
        m = 0
        for j in range(d):
            key = (bit[j] >> _SHIFT) + _HALF
            if (key == band_neg) | (key == band_pos):
                idx[m] = j
                m += 1
        idx = idx[:m]
        mag = np.abs(val[idx]).astype(np.float64)
        sign = (bit[idx] >= 0).astype(np.int64)
        pruned = below.copy()
        take = np.zeros(m, np.bool_)
        for s in range(2):
            if band[s] >= 0:
                of_sign = np.nonzero(sign == s)[0]
                mass = 0.0
                order = np.argsort(mag[of_sign], kind="mergesort")  # stable: ties by position
                for k in of_sign[order]:
                    mass += mag[k]
                    if mass > limit[s] - below[s]:
                        break
                    if mag[k] > 0:  # zeros are never counted as pruned
                        take[k] = True
                        pruned[s] += mag[k]
        lam = np.ones(2, values.dtype)  # cast to the values' type first, as the tensor path does
        for s in range(2):
            if total[s] > pruned[s]:
                lam[s] = total[s] / (total[s] - pruned[s])
        lam_neg, lam_pos = lam[0], lam[1]
        # pass 3: prune and rescale
        row = out[i]
        for j in range(d):
            key = (bit[j] >> _SHIFT) + _HALF
            gone = (key < lo_neg) | ((key >= _HALF) & (key < hi_pos))
            row[j] = 0 if gone else val[j] * (lam_pos if key >= _HALF else lam_neg)
        for k in range(m):
            if take[k]:
                row[idx[k]] = 0
