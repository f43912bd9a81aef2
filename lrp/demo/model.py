"""The demo CNN: a small, realistic genomic convolutional network over one-hot DNA.

Input ``(N, 4, L)`` one-hot in ACGT order; output ``(N, n_tasks)`` logits. Task 0 is "any planted site in the
window", task t >= 1 is "the window holds a site of TF t". Layers are modules (``nn.ReLU``, not
``torch.relu``) so hook-based methods (tangermeme's DeepLIFT) and the fx graph walk both see them.
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
