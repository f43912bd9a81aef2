"""lrp.engine.conv: the taps path for few output channels equals torch's convolution and its input gradient."""

import pytest
import torch
import torch.nn.functional as F

from lrp.engine.conv import NARROW, _by_taps, conv1d, conv1d_input_vjp

CASES = [
    # (in, out, kernel, dilation, padding)
    (64, 1, 75, 1, 37),  # BPNet's profile head
    (8, 2, 15, 1, 0),
    (8, 3, 7, 2, "same"),
    (8, 4, 6, 1, "same"),  # even kernel: torch pads one more on the right
    (5, 1, 9, 3, "valid"),
    (6, 2, 5, 2, 11),  # more padding than the kernel spans
    (8, 16, 3, 2, 2),  # wide: torch's own path
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv_and_input_vjp_equal_torch(case, dtype):
    c, o, k, d, pad = case
    g = torch.Generator().manual_seed(k)
    x = torch.randn(3, c, 120, generator=g, dtype=dtype)
    w = torch.randn(o, c, k, generator=g, dtype=dtype)
    b = torch.randn(o, generator=g, dtype=dtype)
    assert _by_taps(x, w, 1, 1) == (o <= NARROW)
    tol = {"rtol": 1e-5, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    leaf = x.clone().requires_grad_()
    want = F.conv1d(leaf, w, b, 1, pad, d)
    got = conv1d(x, w, b, 1, pad, d)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want.detach(), **tol)
    s = torch.randn(want.shape, generator=g, dtype=dtype)
    (grad,) = torch.autograd.grad(want, leaf, s)
    torch.testing.assert_close(conv1d_input_vjp(s, x, w, 1, pad, d), grad, **tol)


def test_strided_and_grouped_convolutions_go_to_torch():
    x, w = torch.randn(2, 4, 50), torch.randn(2, 4, 5)
    assert not _by_taps(x, w, 2, 1)
    assert not _by_taps(x, torch.randn(2, 2, 5), 1, 2)
    torch.testing.assert_close(conv1d(x, w, None, 2, 1, 1), F.conv1d(x, w, None, 2, 1))


def test_gradient_through_the_taps_path():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 60, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 8, 11, generator=g, dtype=torch.float64)
    s = torch.randn(2, 1, 60, generator=g, dtype=torch.float64)
    (ours,) = torch.autograd.grad(conv1d(x, w, None, 1, "same", 2), x, s)
    (want,) = torch.autograd.grad(F.conv1d(x, w, None, 1, "same", 2), x, s)
    torch.testing.assert_close(ours, want)
