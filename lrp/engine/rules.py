"""LRP rules for linear layers and the composite that picks one per layer.

A *linear layer* computes ``z = W a + b`` (Linear, Conv1d of any stride/padding/dilation/groups, BatchNorm
merged in). Each rule returns the factor ``c`` with ``R_in = a * c``:

- ``epsilon``: ``c = W^T (R / stab(z))`` with ``stab(z) = z + eps * sign(z)`` (``sign(0) = 1``).
- ``zplus``: positive contributions only. ``c = W+^T (R / stab(z+))`` with ``z+ = W+ a`` for ``a >= 0``;
  for signed inputs the zennit form ``(a+ W+ + a- W-)`` is used, which equals the spec where ``a >= 0``.
- ``gamma``: the epsilon rule with ``W -> W + gamma W+`` and ``b -> b + gamma b+``.
"""

import fnmatch
import math
from dataclasses import dataclass, field

import numba
import torch

from lrp.engine import kernels

RULES = ("epsilon", "zplus", "gamma")


@dataclass(frozen=True)
class Rule:
    """One LRP rule with its parameters."""

    name: str = "epsilon"
    eps: float = 1e-6
    gamma: float = 0.25

    def __post_init__(self):
        if self.name not in RULES:
            raise ValueError(f"unknown LRP rule {self.name!r}; choose one of {', '.join(RULES)}")


@dataclass
class Composite:
    """Which rule each linear layer gets: by layer name (glob patterns, first match wins), else by type.

    ``first`` is for layers that read the input sequence (epsilon: absent bases get exactly zero),
    ``conv`` for hidden convolutions, ``linear`` for Linear layers.
    """

    first: Rule = field(default_factory=lambda: Rule("epsilon"))
    conv: Rule = field(default_factory=lambda: Rule("zplus"))
    linear: Rule = field(default_factory=lambda: Rule("epsilon"))
    names: dict = field(default_factory=dict)
    eps: float = 1e-6  # epsilon of the parameter-free linear ops (sums, means, average pools)

    def rule_for(self, name, kind, is_first):
        """The rule of a layer called ``name`` of ``kind`` ('conv' or 'linear')."""
        for pattern, rule in self.names.items():
            if fnmatch.fnmatchcase(name, pattern):
                return rule
        if is_first:
            return self.first
        return self.conv if kind == "conv" else self.linear


def _rule(spec, default_eps):
    if isinstance(spec, Rule):
        return spec
    if isinstance(spec, str):
        return Rule(spec, eps=default_eps)
    spec = dict(spec)
    return Rule(spec.pop("rule", spec.pop("name", "epsilon")), **{"eps": default_eps, **spec})


def composite(spec=None):
    """Build a :class:`Composite` from a config mapping, e.g.
    ``{"eps": 1e-6, "first": "epsilon", "conv": "zplus", "linear": "epsilon",
    "names": {"body.3.*": {"rule": "gamma", "gamma": 0.5}}}``. ``None`` gives the default composite.
    """
    if isinstance(spec, Composite):
        return spec
    spec = dict(spec or {})
    eps = float(spec.pop("eps", 1e-6))
    out = Composite(eps=eps)
    for key in ("first", "conv", "linear"):
        if key in spec:
            setattr(out, key, _rule(spec.pop(key), eps))
        else:
            setattr(out, key, Rule(getattr(out, key).name, eps=eps))
    out.names = {k: _rule(v, eps) for k, v in (spec.pop("names", None) or {}).items()}
    if spec:
        raise ValueError(f"unknown LRP rule keys: {', '.join(sorted(spec))}")
    return out


def divide_stabilized(relevance, z, eps):
    """``relevance / (z + eps * sign(z))`` with ``sign(+0) = 1`` (the epsilon rule's denominator), in one
    new buffer. On the CPU one pass of a numba kernel, elsewhere three tensor ops; the same bits."""
    if kernels.usable(relevance, z):
        kernels.use_torch_threads()
        out = torch.empty(z.shape, dtype=z.dtype)
        _divide_stabilized_flat(_flat(relevance), _flat(z), eps, out.view(-1).numpy())
        return out
    d = torch.copysign(torch.tensor(eps, dtype=z.dtype, device=z.device), z).add_(z)
    return torch.div(relevance, d, out=d)


def split_sum(relevance, y, u, v, eps):
    """The epsilon rule for ``y = u + v`` (a residual sum): ``(u * s, v * s)`` with
    ``s = relevance / (y + eps * sign(y))``, all of one shape. On the CPU one pass of a numba kernel."""
    if kernels.usable(relevance, y, u, v):
        kernels.use_torch_threads()
        ru, rv = torch.empty(y.shape, dtype=y.dtype), torch.empty(y.shape, dtype=y.dtype)
        _split_sum_flat(
            _flat(relevance),
            _flat(y),
            _flat(u),
            _flat(v),
            eps,
            ru.view(-1).numpy(),
            rv.view(-1).numpy(),
        )
        return ru, rv
    s = divide_stabilized(relevance, y, eps)
    return u * s, v * s


def _flat(t):
    return t.contiguous().view(-1).numpy()


@numba.njit(parallel=True, cache=True, nogil=True)
def _divide_stabilized_flat(relevance, z, eps, out):
    eps = z.dtype.type(eps)
    for i in numba.prange(z.size):
        out[i] = relevance[i] / (math.copysign(eps, z[i]) + z[i])


@numba.njit(parallel=True, cache=True, nogil=True)
def _split_sum_flat(relevance, y, u, v, eps, ru, rv):
    eps = y.dtype.type(eps)
    for i in numba.prange(y.size):
        s = relevance[i] / (math.copysign(eps, y[i]) + y[i])
        ru[i] = u[i] * s
        rv[i] = v[i] * s


def linear_rule_factor(rule, a, relevance, weight, bias, apply, vjp, z=None, nonneg=False):
    """The factor ``c`` of ``R_in = a * c`` for one linear layer.

    a: input activations; relevance: ``R`` at the output, shape of ``z``; ``apply(a, w, b)`` computes the
    layer; ``vjp(s, w)`` computes ``W^T s`` for the input; ``z``: the stored output (epsilon rule reuses it);
    nonneg: ``a >= 0`` is known (else z-plus checks it).
    """
    if rule.name == "epsilon":
        z = apply(a, weight, bias) if z is None else z
        return vjp(divide_stabilized(relevance, z, rule.eps), weight)
    if rule.name == "gamma":
        w = weight + rule.gamma * weight.clamp(min=0)
        b = None if bias is None else bias + rule.gamma * bias.clamp(min=0)
        return vjp(divide_stabilized(relevance, apply(a, w, b), rule.eps), w)
    # z-plus
    w_pos = weight.clamp(min=0)
    if nonneg or float(a.min()) >= 0:
        return vjp(divide_stabilized(relevance, apply(a, w_pos, None), rule.eps), w_pos)
    w_neg = weight.clamp(max=0)
    a_pos, a_neg = a.clamp(min=0), a.clamp(max=0)
    s = divide_stabilized(
        relevance, apply(a_pos, w_pos, None) + apply(a_neg, w_neg, None), rule.eps
    )
    # a * c must equal a+ (W+^T s) + a- (W-^T s): pick the factor by the sign of a.
    return torch.where(a >= 0, vjp(s, w_pos), vjp(s, w_neg))
