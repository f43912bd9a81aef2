"""The PLRP engine: LRP rules against captum and gradient x input, conservation, pruning, graphs, targets."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from models import BPNetLike, NarrowCNN, one_hot, randomize_batchnorm, sequential_cnn
from torch import nn

from lrp import explain
from lrp.core.errors import PlrpError


@pytest.fixture(autouse=True)
def _seeded():
    """Every test builds its random models from the same seed, whatever ran before it."""
    torch.manual_seed(0)


#: epsilon everywhere, relevance against zero (LRP's own root point: what captum and conservation check)
EPS_ALL = {"first": "epsilon", "conv": "epsilon", "linear": "epsilon", "eps": 1e-9, "root": "zero"}


def gini(r):
    """Gini index of |r| per row; r: (N, L)."""
    v = np.sort(np.abs(np.asarray(r)), axis=1)
    n = v.shape[1]
    idx = np.arange(1, n + 1)
    return ((2 * idx - n - 1) * v).sum(1) / (n * v.sum(1))


@pytest.mark.parametrize("seed", [0, 1, 2, "narrow"])
def test_epsilon_lrp_equals_captum(seed):
    from captum.attr import LRP
    from captum.attr._utils.lrp_rules import EpsilonRule

    if seed == "narrow":  # few output channels: lrp.engine.conv's taps path
        torch.manual_seed(3)
        model, seed = NarrowCNN(length=50).eval(), 3
    else:
        model = sequential_cnn(length=50, seed=seed)
    x = one_hot(6, 50, seed=seed)
    ours = explain(model, x, method="lrp", target=2, rules=EPS_ALL).relevance
    oracle = copy.deepcopy(model)
    for layer in oracle.modules():
        if isinstance(layer, (nn.Conv1d, nn.Linear, nn.AvgPool1d)):
            layer.rule = EpsilonRule(epsilon=1e-9)
    theirs = LRP(oracle).attribute(x.clone(), target=2)
    assert ours.abs().max() > 1e-3
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-5, rtol=1e-4)


def test_epsilon_everywhere_on_bias_free_relu_net_is_gradient_x_input():
    torch.manual_seed(1)
    model = BPNetLike(bias=False, batchnorm=False).eval()
    x = one_hot(4, 80)
    target = {"output": "counts", "index": 1}
    lrp = explain(model, x, method="lrp", target=target, rules={**EPS_ALL, "eps": 1e-12})
    gxi = explain(model, x, method="gradient-x-input", target=target)
    torch.testing.assert_close(lrp.relevance, gxi.relevance, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(lrp.target, gxi.target)


def test_uniform_root_takes_the_first_layer_against_the_root_point():
    """Against the uniform root (the default) the first layer splits its relevance in proportion to
    ``(x - x~) w``, the root ``x~`` at 1/4 per base, over ``z - z~ = W (x - x~)`` (no bias) stabilized
    relative to the layer's typical ``|z - z~|`` (lrp.engine.rules.divide_relative); above it epsilon-LRP
    of a bias-free ReLU net sends ``z * df/dz``. Computed here by autograd and by hand; the position's
    relevance is ``sum_c (x_c - x~_c) c_c``, kept on the base it holds, and absent bases stay at zero."""
    from lrp.engine.rules import ROOT_EPS

    torch.manual_seed(1)
    model = BPNetLike(bias=False, batchnorm=False).eval()
    x = one_hot(4, 80)
    x[:, :, 5:9] = 0  # N
    target = {"output": "counts", "index": 1}
    rules = {**EPS_ALL, "eps": 1e-12, "root": "uniform"}
    ours = explain(model, x, method="lrp", target=target, rules=rules)

    z = model.iconv(x).detach().requires_grad_()
    h = torch.relu(z)
    for conv in model.rconvs:
        h = torch.add(h, F.relu(conv(h)))
    h = h[:, :, 5:-5]
    counts = model.linear(F.max_pool1d(h, 2).mean(-1))
    (g,) = torch.autograd.grad(counts[:, 1].sum(), z)
    r_z = z.detach() * g  # epsilon-LRP above the first layer: gradient times the layer's output
    x_root = x.sum(1, keepdim=True).expand_as(x) / 4
    dz = F.conv1d(x - x_root, model.iconv.weight, padding=4)
    scale = ROOT_EPS * dz.abs().mean(-1, keepdim=True)
    s = r_z / (dz + torch.copysign(scale, dz))
    c = F.conv_transpose1d(s, model.iconv.weight, padding=4)
    expected = c - c.mean(1, keepdim=True)
    torch.testing.assert_close(ours.hypothetical, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.relevance, x * expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        ours.relevance.sum(1), ((x - x_root) * c).sum(1), atol=1e-5, rtol=1e-4
    )
    assert (ours.relevance[:, :, 5:9] == 0).all() and ((ours.relevance != 0).sum(1) <= 1).all()
    zero = explain(model, x, method="lrp", target=target, rules={**rules, "root": "zero"})
    assert not torch.allclose(zero.relevance, ours.relevance)
    unset = {k: v for k, v in rules.items() if k != "root"}
    torch.testing.assert_close(
        explain(model, x, method="lrp", target=target, rules=unset).relevance, ours.relevance
    )


def test_a_window_of_n_gets_zero_relevance_and_hypothetical_scores():
    """A window that is all N equals the uniform root point: the first layer has nothing to split, so its
    relevance and hypothetical scores are zero (dividing by its zero ``z - z~`` gave scores of 5e8)."""
    torch.manual_seed(0)
    model = BPNetLike().eval()
    x = one_hot(3, 80)
    x[1] = 0
    x[2, :, :40] = 0
    for method in ("lrp", "plrp-lambda"):
        out = explain(model, x, method=method, target={"output": "counts", "index": 0})
        assert (out.relevance[1] == 0).all() and (out.hypothetical[1] == 0).all()
        assert torch.isfinite(out.hypothetical).all()
        assert out.hypothetical[2].abs().max() < 10 * out.hypothetical[0].abs().max()


def test_first_layer_bias_does_not_flip_the_relevance_under_exp():
    """A first layer under ``exp`` (Koo & Ploenzke's activation) learns a negative bias, so ``W x + b`` is
    negative where ``W x`` is not: an epsilon rule dividing by ``W x + b`` flipped the sign of the sites'
    relevance (measured on benchmarks/quality.py's expcnn: AUPRC 0.15 against gradient x input's 0.75).
    Against the root point the bias cancels: one motif filter, bias -6, the motif's bases get positive
    relevance (they raise the output) and every base keeps the sign of its own contribution."""
    motif = torch.tensor([0, 3, 2, 0, 1, 0])  # ATGACA

    class ExpNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 1, 6)
            with torch.no_grad():
                self.conv.weight.copy_(F.one_hot(motif, 4).T[None].float() - 0.25)
                self.conv.bias.fill_(-6.0)  # W x + b = -1.5 on the motif, W x = 4.5
            self.head = nn.Linear(1, 1, bias=False)
            with torch.no_grad():
                self.head.weight.fill_(1.0)

        def forward(self, x):
            return self.head(F.max_pool1d(torch.exp(self.conv(x)), x.shape[-1] - 5).flatten(1))

    x = one_hot(3, 40, seed=2)
    x[:, :, 10:16] = F.one_hot(motif, 4).T.float()
    model = ExpNet().eval()
    out = explain(model, x, method="lrp", target=0).relevance.sum(1)
    assert (out[:, 10:16] > 0).all(), out[:, 10:16]
    assert (out[:, 10:16].sum(1) > 0.9 * out.abs().sum(1)).all()


def test_unknown_root_is_an_error():
    model = BPNetLike().eval()
    with pytest.raises(PlrpError, match="unknown LRP root 'mean'. Fix"):
        explain(
            model, one_hot(1, 80), method="lrp", target={"output": "counts"}, rules={"root": "mean"}
        )


@pytest.mark.parametrize("rule", ["epsilon", "zplus", "gamma"])
@pytest.mark.parametrize("method", ["lrp", "plrp-lambda"])
def test_conservation_on_bias_free_models(rule, method):
    # against the zero root every rule conserves f(x) on a bias-free model
    model = randomize_batchnorm(BPNetLike(bias=False), shift=False)
    x = one_hot(5, 80, seed=3)
    target = {"output": "counts", "index": 0}
    rules = {"first": "epsilon", "conv": rule, "linear": rule, "eps": 1e-9, "root": "zero"}
    pruning = {"p_pos": 0.3} if method != "lrp" else {}
    out = explain(model, x, method=method, target=target, rules=rules, **pruning)
    torch.testing.assert_close(out.relevance.sum((1, 2)), out.target, atol=1e-4, rtol=1e-4)


def test_plrp_m_conserves_within_eps():
    # PLRP-M sends each upper neuron's relevance to its kept contributors, so a layer conserves as long as
    # every upper neuron keeps one: true of dense layers (a conv neuron whose whole receptive field was
    # pruned loses its relevance, which the README states).
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(4 * 30, 32, bias=False),
        nn.ReLU(),
        nn.Linear(32, 32, bias=False),
        nn.ReLU(),
        nn.Linear(32, 2, bias=False),
    ).eval()
    x = one_hot(6, 30, seed=4)
    for rule in ("epsilon", "zplus"):
        rules = {"linear": rule, "root": "zero"}
        out = explain(model, x, method="plrp-m", target=0, p_pos=0.3, rules=rules)
        ref = explain(model, x, method="lrp", target=0, rules=rules)
        torch.testing.assert_close(out.relevance.sum((1, 2)), out.target, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(out.relevance, ref.relevance)


def test_p_zero_reproduces_lrp():
    model = randomize_batchnorm(BPNetLike())
    x = one_hot(4, 80, seed=5)
    target = {"output": "counts", "index": 1}
    lrp = explain(model, x, method="lrp", target=target).relevance
    for method in ("plrp-lambda", "plrp-m"):
        same = explain(model, x, method=method, target=target, p_pos=0.0, p_neg=0.0).relevance
        torch.testing.assert_close(same, lrp, atol=1e-6, rtol=0)


def test_sparsity_rises_with_p_and_inputs_prune_different_neurons():
    torch.manual_seed(0)
    model = randomize_batchnorm(BPNetLike(filters=24, n_layers=4))
    x = one_hot(16, 200, seed=6)
    target = {"output": "counts", "index": 0}
    ginis = []
    for p in (0.0, 0.5, 0.9):  # on an untrained model small p barely moves the Gini index
        out = explain(model, x, method="plrp-lambda", target=target, p_pos=p, return_layers=True)
        ginis.append(gini(out.relevance.sum(1)).mean())
    assert ginis == sorted(ginis) and ginis[-1] > ginis[0] + 0.05, ginis
    hidden = out.layers["rconvs.3"]
    zero = (hidden == 0).flatten(1)
    assert zero.any() and not bool((zero[0] == zero[1]).all())


def test_bpnet_like_profile_and_counts_heads():
    model = randomize_batchnorm(BPNetLike(bias=False), shift=False)
    x = one_hot(3, 100, seed=7)
    prof = explain(
        model,
        x,
        method="plrp-lambda",
        target={"output": "profile", "reduction": "profile"},
        rules={"root": "zero"},
    )
    logits = model(x)["profile"]
    centred = logits - logits.mean(-1, keepdim=True)
    expected = (torch.softmax(centred, -1) * centred).sum(-1)
    torch.testing.assert_close(prof.target, expected.detach())
    torch.testing.assert_close(prof.relevance.sum((1, 2)), prof.target, atol=1e-4, rtol=1e-4)
    counts = explain(model, x, method="lrp", target={"output": 1, "index": 1})
    torch.testing.assert_close(counts.target, model(x)["counts"][:, 1].detach())


def test_absent_bases_get_zero_and_hypothetical_factors_relevance():
    model = randomize_batchnorm(BPNetLike())
    x = one_hot(3, 80, seed=8)
    x[:, :, 10:15] = 0  # N
    for method in ("lrp", "plrp-lambda", "plrp-m", "gradient-x-input"):
        out = explain(model, x, method=method, target={"output": "counts", "index": 0})
        assert float((out.relevance * (1 - x)).abs().max()) == 0.0
        torch.testing.assert_close(out.relevance, x * out.hypothetical)
        assert float(out.hypothetical[:, :, 20:30].abs().sum()) > 0  # defined for absent bases too


def test_exported_program_explains_like_the_module(tmp_path):
    model = randomize_batchnorm(BPNetLike())
    x = one_hot(5, 80, seed=9)
    ep = torch.export.export(model, (x[:2],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, tmp_path / "m.pt2")
    loaded = torch.export.load(tmp_path / "m.pt2")
    target = {"output": "counts", "index": 0}
    for method in ("lrp", "plrp-lambda", "gradient-x-input"):
        a = explain(model, x, method=method, target=target).relevance
        b = explain(loaded, x, method=method, target=target, batch_size=2).relevance
        torch.testing.assert_close(a, b)


def test_static_batch_program_is_padded():
    model = randomize_batchnorm(BPNetLike())
    x = one_hot(5, 80, seed=10)
    ep = torch.export.export(model, (x[:4],))  # batch fixed at 4
    target = {"output": "counts", "index": 0}
    a = explain(model, x, method="lrp", target=target).relevance
    b = explain(ep, x, method="lrp", target=target).relevance
    torch.testing.assert_close(a, b)


def test_users_model_is_not_changed():
    model = randomize_batchnorm(BPNetLike())
    model.train()
    before = copy.deepcopy(model.state_dict())
    explain(model, one_hot(2, 80), method="plrp-m", target={"output": "counts", "index": 0})
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        return (h * torch.sigmoid(h)).sum((1, 2))[:, None]


class Sorted(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):
        return torch.sort(self.conv(x), dim=-1).values[:, :, -1]


def test_unsupported_ops_raise_an_error_naming_them():
    x = one_hot(2, 20)
    with pytest.raises(PlrpError, match="multiplies two signals"):
        explain(Gated().eval(), x, method="lrp", target=0)
    with pytest.raises(PlrpError, match="aten.sort"):
        explain(Sorted().eval(), x, method="lrp", target=0)


def test_target_errors_are_clear():
    model = randomize_batchnorm(BPNetLike())
    x = one_hot(2, 80)
    with pytest.raises(PlrpError, match="2 outputs"):
        explain(model, x, method="lrp")
    with pytest.raises(PlrpError, match="out of range"):
        explain(model, x, method="lrp", target={"output": "counts", "index": 5})
    with pytest.raises(PlrpError, match="unknown method"):
        explain(model, x, method="saliency")
    with pytest.raises(PlrpError, match=r"outside \[0, 1\)"):
        explain(model, x, method="plrp-lambda", p_pos=1.0, target={"output": "counts", "index": 0})


def test_per_layer_overrides_and_first_layer_unpruned():
    model = randomize_batchnorm(BPNetLike())
    x = one_hot(4, 80, seed=11)
    target = {"output": "counts", "index": 0}
    out = explain(
        model,
        x,
        method="plrp-lambda",
        target=target,
        p_pos=0.0,
        p_neg=0.0,
        p_layers={"rconvs.2": 0.6},
        return_layers=True,
    )
    ref = explain(model, x, method="lrp", target=target, return_layers=True)
    assert "iconv" in out.layers  # the first layer's input relevance: never pruned directly
    assert float((out.layers["rconvs.2"] == 0).float().mean()) > float(
        (ref.layers["rconvs.2"] == 0).float().mean()
    )
    torch.testing.assert_close(out.layers["rconvs.3"], ref.layers["rconvs.3"])


def test_deeplift_shap_through_tangermeme():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(4, 8, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30, 2)
    )
    model.eval()
    x = one_hot(3, 30, seed=12)
    out = explain(model, x, method="deeplift-shap", target=1, n_shuffles=5, seed=1)
    assert out.relevance.shape == (3, 4, 30)
    torch.testing.assert_close(out.relevance, x * out.hypothetical)
    # DeepLIFT's summation-to-delta: relevance sums to f(x) - mean f(reference) — same sign structure
    gxi = explain(model, x, method="gradient-x-input", target=1)
    assert (
        float(F.cosine_similarity(out.relevance.flatten(1), gxi.relevance.flatten(1)).mean()) > 0.5
    )


def test_inputs_known_nonnegative_by_construction():
    """z-plus skips its runtime sign check only where the graph guarantees a >= 0; the result is the same."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0 = nn.Conv1d(4, 6, 5, padding=2)
            self.after_relu = nn.Conv1d(6, 6, 3, padding=1)
            self.after_pool_sum = nn.Conv1d(6, 6, 3, padding=1)
            self.after_tanh = nn.Conv1d(6, 6, 3, padding=1)
            self.after_pad = nn.Conv1d(6, 6, 3)
            self.head = nn.Linear(6, 1)

        def forward(self, x):
            h = torch.relu(self.c0(x))
            h = h + torch.relu(self.after_relu(h))
            h = F.max_pool1d(h, 2) + F.max_pool1d(h, 2)
            h = torch.tanh(self.after_pool_sum(h))
            h = self.after_tanh(h)
            h = self.after_pad(F.pad(torch.relu(h), (1, 1), value=-1.0))
            return self.head(h.mean(-1))

    from lrp.engine.explain import Explainer

    model = Net().eval()
    explainer = Explainer(model, 40, 4, "lrp", 0, device="cpu")
    known = {layer.name: layer.nonneg_input for layer in explainer.plan.layers.values()}
    assert known == {
        "c0": False,
        "after_relu": True,
        "after_pool_sum": True,
        "after_tanh": False,
        "after_pad": False,
        "head": False,
    }
    x = one_hot(5, 40, seed=8)
    fast = explainer.explain_batch(x).relevance
    for layer in explainer.plan.layers.values():
        layer.nonneg_input = False  # every z-plus layer checks its input at run time
    torch.testing.assert_close(explainer.explain_batch(x).relevance, fast, rtol=0, atol=0)


class TwoHeads(nn.Module):
    """A trunk shared by a counts head and, optionally, a profile head with an op plrp has no rule for."""

    def __init__(self, profile_head=True):
        super().__init__()
        self.profile_head = profile_head
        self.c1 = nn.Conv1d(4, 8, 5, padding=2)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1)
        self.linear = nn.Linear(8, 1)
        self.pconv = nn.Conv1d(8, 1, 5, padding=2)

    def forward(self, x):
        h = torch.relu(self.c2(torch.relu(self.c1(x))))
        counts = self.linear(h.mean(-1))
        if not self.profile_head:
            return counts
        return {"profile": torch.sort(self.pconv(h), dim=-1).values, "counts": counts}


def test_only_the_explained_output_is_planned_run_and_pruned():
    """The other heads are not part of an output's explanation: an op plrp can't explain may sit in them,
    and the trunk's output is pruned only where a layer of the explained head reads it."""
    model = TwoHeads().eval()
    alone = TwoHeads(profile_head=False).eval()
    alone.load_state_dict(model.state_dict())
    x = one_hot(4, 60, seed=9)
    for method in ("lrp", "plrp-lambda", "plrp-m"):
        pruning = {"p_pos": 0.3} if method != "lrp" else {}
        both = explain(model, x, method=method, target={"output": "counts"}, **pruning)
        one = explain(alone, x, method=method, target=0, **pruning)
        torch.testing.assert_close(both.relevance, one.relevance, rtol=0, atol=0)
    with pytest.raises(PlrpError, match="aten.sort"):
        explain(model, x, method="lrp", target={"output": "profile", "reduction": "sum"})


@pytest.mark.parametrize("method", ["lrp", "plrp-lambda", "plrp-m", "gradient-x-input"])
def test_cpu_kernels_give_what_the_tensor_ops_give(method, monkeypatch):
    """The CPU's numba kernels (pruning, epsilon divisions, residual splits) give the bits of the tensor ops a
    GPU runs, and the taps convolution of a narrow head gives torch's convolution up to rounding."""
    import lrp.engine.conv
    import lrp.engine.kernels

    model = randomize_batchnorm(BPNetLike())
    x = one_hot(6, 100, seed=11)
    target = {"output": "profile", "reduction": "profile"}  # a 1-channel head: the taps path
    pruning = {"p_pos": 0.3} if method.startswith("plrp") else {}
    fast = explain(model, x, method=method, target=target, **pruning)
    monkeypatch.setattr(lrp.engine.kernels, "usable", lambda *t: False)
    tensor_ops = explain(model, x, method=method, target=target, **pruning)
    assert torch.equal(fast.relevance, tensor_ops.relevance)
    monkeypatch.setattr(lrp.engine.conv, "_by_taps", lambda *a: False)
    torch_conv = explain(model, x, method=method, target=target, **pruning)
    atol = 1e-7
    assert fast.relevance.abs().max() > 100 * atol  # the comparison below is not vacuous
    if method == "plrp-m":
        # plrp-m removes the neurons it ranks lowest: a rounding difference between the two convolutions can
        # swap two near-tied neurons, which moves the relevance of a few positions; the rest agree to rounding
        close = torch.isclose(torch_conv.relevance, fast.relevance, rtol=1e-4, atol=atol)
        assert close.float().mean() >= 0.99, close.float().mean()
        return
    torch.testing.assert_close(torch_conv.relevance, fast.relevance, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stabilized_division_kernels_equal_the_tensor_ops(dtype, monkeypatch):
    import lrp.engine.kernels
    from lrp.engine.rules import divide_stabilized, split_sum

    g = torch.Generator().manual_seed(5)
    u, v, r = (torch.randn(3, 5, 200, generator=g, dtype=dtype) for _ in range(3))
    u[0, 0, :10], v[0, 0, :10] = 1e-7, -1e-7  # sums near zero: eps decides
    y = u + v
    y[1, 1, :3] = torch.tensor([0.0, -0.0, 1e-30], dtype=dtype)  # sign(+0) = 1, sign(-0) = -1
    fast = divide_stabilized(r, y, 1e-6), split_sum(r, y, u, v, 1e-6)
    monkeypatch.setattr(lrp.engine.kernels, "usable", lambda *t: False)
    assert torch.equal(divide_stabilized(r, y, 1e-6), fast[0])
    for got, want in zip(split_sum(r, y, u, v, 1e-6), fast[1]):
        assert torch.equal(got, want)


def test_a_new_rule_is_one_registered_class(monkeypatch):
    """A rule is a class registered under its config name; nothing else needs to change to use it."""
    from dataclasses import dataclass
    from typing import ClassVar

    from lrp.engine import rules

    monkeypatch.setattr(rules, "RULES", dict(rules.RULES))

    @rules.register
    @dataclass(frozen=True)
    class HalfEpsilon(rules.LayerRule):
        name: ClassVar[str] = "half-epsilon"

        def factor(self, a, relevance, weight, bias, apply, vjp, z=None, nonneg=False):
            return rules.Epsilon(self.eps).factor(a, relevance / 2, weight, bias, apply, vjp, z)

    model = sequential_cnn(seed=4)
    x = one_hot(3, 50, seed=4)
    half = {**EPS_ALL, "linear": "half-epsilon"}
    ours = explain(model, x, method="lrp", target=1, rules=half).relevance
    ref = explain(model, x, method="lrp", target=1, rules=EPS_ALL).relevance
    torch.testing.assert_close(ours, ref / 2)


def test_rule_config_becomes_rule_objects():
    from lrp.engine.rules import Epsilon, Gamma, ZPlus, composite

    default = composite(None)
    assert (default.first, default.conv, default.linear) == (Epsilon(), ZPlus(), Epsilon())
    c = composite({"eps": 1e-3, "conv": {"rule": "gamma", "gamma": 0.5}, "names": {"a.*": "zplus"}})
    assert c.conv == Gamma(eps=1e-3, gamma=0.5) and c.first == Epsilon(eps=1e-3)
    assert c.rule_for("a.1", "linear", False) == ZPlus(eps=1e-3)
    assert c.op_rule("sum").eps == 1e-3
    for bad, match in [
        ({"conv": "alpha-beta"}, "unknown LRP rule 'alpha-beta'. Fix: choose one of epsilon"),
        ({"conv": {"rule": "epsilon", "gamma": 1}}, "epsilon takes only eps, not gamma"),
        ({"layers": {}}, "unknown LRP rule keys: layers. Fix:"),
    ]:
        with pytest.raises(PlrpError, match=match):
            composite(bad)


def test_batchnorm_merging_is_a_canonizer_step():
    """The canonizer folds BatchNorm into the convolution before it; without it the BatchNorm is a
    parameter-free linear op under the epsilon rule, which for epsilon everywhere gives the same relevance."""
    from lrp.engine.explain import Explainer
    from lrp.engine.graph import plan
    from lrp.engine.rules import composite

    model = randomize_batchnorm(BPNetLike())
    x = one_hot(4, 80, seed=2)
    target = {"output": "counts", "index": 0}
    explainer = Explainer(model, 80, 4, "lrp", target, rules=EPS_ALL, device="cpu")
    merged = explainer.explain_batch(x).relevance
    assert (
        explainer.plan.absorbed
    )  # the BatchNorm (and the bare convolution) are skipped by the walk
    iconv = next(la for la in explainer.plan.layers.values() if la.name == "iconv")
    assert not torch.equal(iconv.weight, model.iconv.weight)
    explainer.plan = plan(explainer.program, composite(EPS_ALL), explainer.target, canonizers=())
    iconv = next(la for la in explainer.plan.layers.values() if la.name == "iconv")
    assert not explainer.plan.absorbed and torch.equal(iconv.weight, model.iconv.weight)
    torch.testing.assert_close(explainer.explain_batch(x).relevance, merged, rtol=1e-4, atol=1e-6)
