"""Small models for the engine tests: Sequential CNNs and a BPNet-like model with functional ops."""

import torch
import torch.nn.functional as F
from torch import nn


def one_hot(n, length, seed=0):
    """Random one-hot sequences (n, 4, length) float32."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=g)
    return F.one_hot(idx, 4).permute(0, 2, 1).float()


def randomize_batchnorm(model, shift=True, seed=0):
    """Give BatchNorm layers non-trivial statistics (with no shift, the layer stays bias-free)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if shift:
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            else:
                m.running_mean.zero_()
                m.bias.data.zero_()
    return model.eval()


class SmallCNN(nn.Module):
    """Conv1d -> ReLU -> Conv1d(stride 2, dilation 2) -> ReLU -> AvgPool -> flatten (in forward) -> Linear."""

    def __init__(self, length=50, bias=True):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(4, 8, 5, padding=2, bias=bias),
            nn.ReLU(),
            nn.Conv1d(8, 6, 3, stride=2, padding=1, dilation=2, bias=bias),
            nn.ReLU(),
            nn.AvgPool1d(2),
        )
        out_len = ((length + 2 - 2 * 2 - 1) // 2 + 1) // 2
        self.linear = nn.Linear(6 * out_len, 3, bias=bias)

    def forward(self, x):
        return self.linear(self.features(x).flatten(1))


class NarrowCNN(nn.Module):
    """Convolutions down to 2 and 1 output channels with long kernels (lrp.engine.conv's taps path), then Linear."""

    def __init__(self, length=50):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(4, 8, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(8, 2, 15, padding=7),
            nn.ReLU(),
            nn.Conv1d(2, 1, 9, padding=2, dilation=2),
        )
        self.linear = nn.Linear(length - 12, 3)

    def forward(self, x):
        return self.linear(self.features(x).flatten(1))


def fit_first_logit(model, x, y, steps=30, lr=0.01):
    """Train ``model`` briefly (full-batch Adam) so its first logit separates ``y`` (0/1) on ``x`` (n, 4, L);
    returns it in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], y)
        loss.backward()
        opt.step()
    return model.eval()


def sequential_cnn(length=50, bias=True, seed=0):
    """A random :class:`SmallCNN` in eval mode."""
    torch.manual_seed(seed)
    return SmallCNN(length, bias).eval()


class BPNetLike(nn.Module):
    """Dilated residual convolutions, functional ops, a profile head and a counts head (dict output)."""

    def __init__(self, filters=16, n_layers=4, bias=True, batchnorm=True):
        super().__init__()
        self.iconv = nn.Conv1d(4, filters, 9, padding=4, bias=bias)
        self.ibn = nn.BatchNorm1d(filters) if batchnorm else nn.Identity()
        self.rconvs = nn.ModuleList(
            nn.Conv1d(filters, filters, 3, padding="same", dilation=2 ** (i + 1), bias=bias)
            for i in range(n_layers)
        )
        self.fconv = nn.Conv1d(2 * filters, 1, 7, padding=3, bias=bias)
        self.linear = nn.Linear(filters, 2, bias=bias)
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        x = torch.relu(self.ibn(self.iconv(x)))
        for conv in self.rconvs:
            x = torch.add(x, F.relu(conv(x)))
        x = x[:, :, 5:-5]  # crop
        profile = self.fconv(torch.cat([x, x * 0.5], dim=1)).squeeze(1)
        pooled = F.max_pool1d(x, 2).mean(-1)
        counts = self.linear(self.drop(pooled.reshape(pooled.shape[0], -1)))
        return {"profile": profile, "counts": counts}
