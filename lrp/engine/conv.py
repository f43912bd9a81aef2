"""Conv1d and its input vector-Jacobian product, with a fast path for layers of few output channels.

A profile head such as BPNet's (64 channels -> 1, kernel 75) is a poor shape for the CPU convolution kernels
(oneDNN): they vectorize over output channels, and run it 10-30x slower than its arithmetic allows. By taps it
is one matrix product and a shifted sum:

- forward: ``Y = W_k x`` for every tap ``k`` at once (``(K O, C) @ (C, L)``), then
  ``z[o, l] = sum_k Y[k, o, l + k d - p_left]`` read through one strided view;
- input VJP (``W^T s``): the ``K`` shifted copies of ``s`` are one strided view, then one matrix product
  ``(C, O K) @ (O K, L)``.

The fast path is taken on the CPU for ``stride 1``, ``groups 1`` and at most :data:`NARROW` output channels
(the input VJP of a convolution reads its ``O K`` shifted rows, so it pays off where ``O`` is small); every
other convolution goes to torch. Results equal torch's to float rounding (tested).
"""

import torch
import torch.nn.functional as F

aten = torch.ops.aten

NARROW = 4  # at most this many output channels take the fast path


def _tuple1(value):
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)


def _pads(padding, dilation, k):
    """(left, right) zero padding for numeric, 'valid' or 'same' padding (stride 1)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = dilation * (k - 1)
        return total // 2, total - total // 2  # torch puts the odd one on the right
    p = _tuple1(padding)
    return p, p


def _by_taps(x, weight, stride, groups):
    return (
        x.device.type == "cpu"
        and _tuple1(stride) == 1
        and groups == 1
        and weight.shape[0] <= NARROW
        and weight.shape[2] > 1
    )


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``F.conv1d`` (padding numeric, 'same' or 'valid'). x: (N, C, L), weight: (O, C/groups, K) -> (N, O, L').

    Differentiable with respect to ``x`` only where the taps path runs (gradient x input needs no more):
    its backward is :func:`conv1d_input_vjp`, not autograd through the strided view, which is slow."""
    if not _by_taps(x, weight, stride, groups):
        return F.conv1d(x, weight, bias, stride, padding, dilation, groups)
    if torch.is_grad_enabled() and x.requires_grad:
        return _TapsConv.apply(x, weight, bias, padding, dilation)
    return _taps(x, weight, bias, padding, dilation)


class _TapsConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation = padding, dilation
        return _taps(x, weight, bias, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = conv1d_input_vjp(grad, x, weight, 1, ctx.padding, ctx.dilation)
        return grad_x, None, None, None, None  # the input's gradient only


def _taps(x, weight, bias, padding, dilation):
    d = _tuple1(dilation)
    n, _, length = x.shape
    o, c, k = weight.shape
    left, right = _pads(padding, d, k)
    lout = length + left + right - d * (k - 1)
    taps = torch.matmul(weight.permute(2, 0, 1).reshape(k * o, c), x)  # (N, K O, L)
    span = lout + d * (k - 1)  # z[l] reads taps at l + k d - left, for l < lout, k < K
    taps = F.pad(taps.view(n, k, o, length), (left, span - length - left))
    st = taps.stride()
    z = taps.as_strided((n, o, lout, k), (st[0], st[2], st[3], st[1] + d * st[3])).sum(-1)
    return z if bias is None else z + bias[:, None]


def conv1d_input_vjp(s, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """``W^T s``: the gradient of :func:`conv1d` at input x (N, C, L) with respect to x, for output cotangents
    s (N, O, L'); (N, C, L)."""
    if not _by_taps(s, weight, stride, groups):
        return _torch_vjp(s, x, weight, stride, padding, dilation, groups)
    d = _tuple1(dilation)
    n, o, lout = s.shape
    length = x.shape[-1]
    _, c, k = weight.shape
    left, _ = _pads(padding, d, k)
    # g[c, l] = sum_{o, k} W[o, c, k] s[o, l - k d + left]; with k' = K - 1 - k the rows of s read are
    # s_padded[o, l + k' d] where s_padded has d (K - 1) - left zeros in front
    front = d * (k - 1) - left
    back = length + d * (k - 1) - front - lout
    padded = F.pad(s, (max(front, 0), max(back, 0)))[..., max(-front, 0) :]
    st = padded.stride()
    shifted = padded.as_strided((n, o, k, length), (st[0], st[1], d * st[2], st[2]))
    w = weight.flip(-1).permute(1, 0, 2).reshape(c, o * k)
    return torch.matmul(w, shifted.reshape(n, o * k, length))


def _torch_vjp(s, x, weight, stride, padding, dilation, groups):
    stride, dilation = [_tuple1(stride)], [_tuple1(dilation)]
    if padding == "valid":
        padding = 0
    if padding != "same":
        mask = [True, False, False]  # the input's gradient only
        pad = [_tuple1(padding)]
        return aten.convolution_backward(
            s, x, weight, None, stride, pad, dilation, False, [0], groups, mask
        )[0]
    leaf = x.detach().requires_grad_()
    with torch.enable_grad():
        z = F.conv1d(leaf, weight, None, stride, padding, dilation, groups)
        return torch.autograd.grad(z, leaf, s)[0]
