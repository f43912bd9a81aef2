"""The demo models: small, realistic genomic convolutional networks over one-hot DNA ``(N, 4, L)`` (ACGT).

- ``DemoBPNet`` (:func:`build_bpnet`, the model ``plrp train`` trains): a BPNet-style network with a profile
  head, ``(N, 1, L)`` logits of the per-base read distribution, and a counts head, ``(N, 1)`` predicted
  ``log(1 + total reads)`` of the window.
- ``DemoCNN`` (:func:`build_model`): a conv + pool classifier with ``(N, n_tasks)`` logits (task 0 "any planted
  site in the window", task t >= 1 "the window holds a site of TF t"), max- or mean-pooled.

Layers are modules (``nn.ReLU``, not ``torch.relu``) so hook-based methods (tangermeme's DeepLIFT) and the fx
graph walk both see them.
"""

import torch
from torch import nn


class DilatedResidual(nn.Module):
    """Two dilated convolutions with ReLUs and a residual sum: ``x + relu(conv2(relu(conv1(x))))``."""

    def __init__(self, channels, kernel_size=3, dilations=(2, 4)):
        super().__init__()
        d1, d2 = dilations
        self.conv1 = nn.Conv1d(
            channels, channels, kernel_size, dilation=d1, padding=d1 * (kernel_size - 1) // 2
        )
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(
            channels, channels, kernel_size, dilation=d2, padding=d2 * (kernel_size - 1) // 2
        )
        self.relu2 = nn.ReLU()

    def forward(self, x):
        """(N, C, L') -> (N, C, L')."""
        y = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return x + y


class DemoCNN(nn.Module):
    """Conv1d(4->F, k) + BatchNorm1d + ReLU + MaxPool1d, a dilated residual block, global pooling, Linear.

    ``pool`` is the global pooling over positions: "max" (``nn.MaxPool1d`` over the whole pooled length,
    a module that DeepLIFT and LRP treat as max pooling) or "mean" (``x.mean(-1)``, as in BPNet).
    """

    def __init__(
        self,
        n_tasks=5,
        length=1000,
        filters=32,
        kernel_size=15,
        pool_size=4,
        pool="max",
        task_names=None,
    ):
        super().__init__()
        if pool not in ("mean", "max"):
            raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
        self.length = length
        self.task_names = list(task_names) if task_names else [f"task{i}" for i in range(n_tasks)]
        if len(self.task_names) != n_tasks:
            raise ValueError(f"{len(self.task_names)} task names for {n_tasks} tasks")
        self.conv = nn.Conv1d(4, filters, kernel_size, padding=kernel_size // 2)
        self.bn = nn.BatchNorm1d(filters)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool1d(pool_size)
        self.block = DilatedResidual(filters)
        self.pool = pool
        self.globalmax = nn.MaxPool1d(length // pool_size) if pool == "max" else None
        self.head = nn.Linear(filters, n_tasks)

    def forward(self, x):
        """(N, 4, L) one-hot -> (N, n_tasks) logits."""
        x = self.maxpool(self.relu(self.bn(self.conv(x))))
        x = self.block(x)
        x = self.globalmax(x).flatten(1) if self.globalmax is not None else x.mean(-1)
        return self.head(x)


def build_model(
    n_tasks=5,
    length=1000,
    filters=32,
    kernel_size=15,
    pool_size=4,
    pool="max",
    task_names=None,
    seed=None,
):
    """Build the demo CNN (random weights; ``seed`` makes them reproducible) -> ``DemoCNN``."""
    if seed is not None:
        torch.manual_seed(seed)
    return DemoCNN(
        n_tasks=n_tasks,
        length=length,
        filters=filters,
        kernel_size=kernel_size,
        pool_size=pool_size,
        pool=pool,
        task_names=task_names,
    )


class DilatedLayer(nn.Module):
    """One BPNet residual layer: ``x + relu(conv(x))``, a dilated convolution with same padding."""

    def __init__(self, channels, dilation, kernel_size=3):
        super().__init__()
        self.conv = nn.Conv1d(
            channels,
            channels,
            kernel_size,
            dilation=dilation,
            padding=dilation * (kernel_size // 2),
        )
        self.relu = nn.ReLU()

    def forward(self, x):
        """(N, C, L) -> (N, C, L)."""
        return x + self.relu(self.conv(x))


class DemoBPNet(nn.Module):
    """BPNet-style network (Avsec et al. 2021) without control tracks or cropping.

    Conv1d(4->F, ``conv_kernel``) + ReLU, then ``layers`` residual layers ``x + relu(conv_d(x))`` (kernel 3,
    dilation 2, 4, 8, ...), all with same padding; the profile head is Conv1d(F->1, ``profile_kernel``), the
    counts head the mean over positions then Linear(F, 1). ``forward`` returns ``(profile (N, 1, L) logits,
    counts (N, 1) log(1 + total reads))``.
    """

    def __init__(self, length=1000, filters=32, layers=6, conv_kernel=21, profile_kernel=25):
        super().__init__()
        if conv_kernel % 2 == 0 or profile_kernel % 2 == 0:
            raise ValueError(f"kernel sizes must be odd, got {conv_kernel} and {profile_kernel}")
        self.length = length
        self.conv = nn.Conv1d(4, filters, conv_kernel, padding=conv_kernel // 2)
        self.relu = nn.ReLU()
        self.dilated = nn.Sequential(*(DilatedLayer(filters, 2 ** (i + 1)) for i in range(layers)))
        self.profile = nn.Conv1d(filters, 1, profile_kernel, padding=profile_kernel // 2)
        self.counts = nn.Linear(filters, 1)

    def forward(self, x):
        """(N, 4, L) one-hot -> (profile logits (N, 1, L), log counts (N, 1))."""
        h = self.dilated(self.relu(self.conv(x)))
        return self.profile(h), self.counts(h.mean(-1))


def build_bpnet(length=1000, filters=32, layers=6, conv_kernel=21, profile_kernel=25, seed=None):
    """Build the demo BPNet (random weights; ``seed`` makes them reproducible) -> ``DemoBPNet``."""
    if seed is not None:
        torch.manual_seed(seed)
    return DemoBPNet(
        length=length,
        filters=filters,
        layers=layers,
        conv_kernel=conv_kernel,
        profile_kernel=profile_kernel,
    )
