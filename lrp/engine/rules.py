"""LRP rules as objects, and the composite that picks one per layer and op.

A *linear layer* computes ``z = W a + b`` (Linear, Conv1d of any stride/padding/dilation/groups, BatchNorm
merged in). Its rule (a :class:`LayerRule`) returns the factor ``c`` with ``R_in = a * c``:

- :class:`Epsilon` (``epsilon``): ``c = W^T (R / stab(z))`` with ``stab(z) = z + eps * sign(z)``
  (``sign(0) = 1``).
- :class:`ZPlus` (``zplus``): positive contributions only. ``c = W+^T (R / stab(z+))`` with ``z+ = W+ a``
  for ``a >= 0``; for signed inputs the zennit form ``(a+ W+ + a- W-)`` is used, which equals the spec where
  ``a >= 0``.
- :class:`Gamma` (``gamma``): the epsilon rule with ``W -> W + gamma W+`` and ``b -> b + gamma b+``.

The other ops on the signal's path get an :class:`OpRule`:

- :class:`PassThrough`: element-wise activations and identities; relevance passes unchanged.
- :class:`Route`: reshapes, slicing, ``cat``, max pooling, padding; relevance follows the op's own routing
  (its vector-Jacobian product), which is exact for them.
- :class:`SumEpsilon`: parameter-free linear ops (``x + y``, scaling, means, average pools, standalone
  BatchNorm); the epsilon rule, so a residual sum splits ``R`` in proportion to its terms.

The composite also fixes the root point the input's relevance is taken against (:data:`ROOTS`,
:func:`at_root`): ``uniform`` by default, ``zero`` for LRP's own.

A layer rule is registered under its config name (``rules: {conv: zplus}``) by :func:`register`; a new rule
is one class with that decorator.
"""

import fnmatch
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numba
import torch

from lrp.core.errors import PlrpError
from lrp.engine import kernels
from lrp.engine.ops import node_vjp, resolve

RULES = {}  # config name -> LayerRule class
#: the root points of the input's relevance (config ``rules: {root: ...}``): ``zero``, LRP's own (relevance
#: of ``f(x) - f(0)``-like terms, the bases as they are), or ``uniform``, every base at its mean over the
#: alphabet (:func:`at_root`)
ROOTS = ("zero", "uniform")
ROOT = "uniform"  #: the default root point (measured across the setups of benchmarks/quality.py)


def register(cls):
    """Class decorator: make a :class:`LayerRule` available under its config name ``cls.name``."""
    RULES[cls.name] = cls
    return cls


@dataclass(frozen=True)
class LayerRule:
    """The rule of a linear layer: the factor ``c`` of ``R_in = a * c``.

    eps: the stabilizer of the denominator (in units of the layer's output ``z``).
    """

    name: ClassVar[str]
    eps: float = 1e-6

    def factor(self, a, relevance, weight, bias, apply, vjp, z=None, nonneg=False):
        """The factor ``c`` (``a``'s shape) of ``R_in = a * c`` for one linear layer.

        Parameters
        ----------
        a : torch.Tensor
            (N, C_in, ...) the layer's input activations.
        relevance : torch.Tensor
            ``R`` at the layer's output, ``z``'s shape (N, C_out, ...).
        weight, bias : torch.Tensor
            The layer's (BatchNorm-merged) parameters; ``bias`` may be ``None``.
        apply : callable
            ``apply(a, w, b)`` computes the layer with weights ``w`` and bias ``b``.
        vjp : callable
            ``vjp(s, w)`` computes ``W^T s`` (``a``'s shape) for weights ``w``.
        z : torch.Tensor, optional
            The stored output ``apply(a, weight, bias)``, where it is at hand.
        nonneg : bool
            ``a >= 0`` is known from the graph (rules that need it skip a check).
        """
        raise NotImplementedError

    def factor_at_root(self, delta, relevance, weight, apply, vjp):
        """The factor ``c`` of ``R_in = delta * c`` for a first layer taken against a root point:
        ``delta = a - a~`` (the layer's input minus its value at the root), the bias cancelled in
        ``z - z~ = W delta``. By default the rule itself on ``delta`` without the bias."""
        return self.factor(delta, relevance, weight, None, apply, vjp)


@register
@dataclass(frozen=True)
class Epsilon(LayerRule):
    """``c = W^T (R / stab(z))``; against a root point ``c = W^T (R / stab_rel(W delta))``
    (:func:`divide_relative`)."""

    name: ClassVar[str] = "epsilon"

    def factor(self, a, relevance, weight, bias, apply, vjp, z=None, nonneg=False):
        z = apply(a, weight, bias) if z is None else z
        return vjp(divide_stabilized(relevance, z, self.eps), weight)

    def factor_at_root(self, delta, relevance, weight, apply, vjp):
        return vjp(divide_relative(relevance, apply(delta, weight, None)), weight)


@register
@dataclass(frozen=True)
class ZPlus(LayerRule):
    """Positive contributions only: ``c = W+^T (R / stab(W+ a))`` for ``a >= 0`` (zennit's form else)."""

    name: ClassVar[str] = "zplus"

    def factor(self, a, relevance, weight, bias, apply, vjp, z=None, nonneg=False):
        w_pos = weight.clamp(min=0)
        if nonneg or float(a.min()) >= 0:
            return vjp(divide_stabilized(relevance, apply(a, w_pos, None), self.eps), w_pos)
        w_neg = weight.clamp(max=0)
        a_pos, a_neg = a.clamp(min=0), a.clamp(max=0)
        s = divide_stabilized(
            relevance, apply(a_pos, w_pos, None) + apply(a_neg, w_neg, None), self.eps
        )
        # a * c must equal a+ (W+^T s) + a- (W-^T s): pick the factor by the sign of a.
        return torch.where(a >= 0, vjp(s, w_pos), vjp(s, w_neg))


@register
@dataclass(frozen=True)
class Gamma(LayerRule):
    """The epsilon rule with ``W -> W + gamma W+``, ``b -> b + gamma b+`` (gamma >= 0, unitless)."""

    name: ClassVar[str] = "gamma"
    gamma: float = 0.25

    def factor(self, a, relevance, weight, bias, apply, vjp, z=None, nonneg=False):
        w = weight + self.gamma * weight.clamp(min=0)
        b = None if bias is None else bias + self.gamma * bias.clamp(min=0)
        return vjp(divide_stabilized(relevance, apply(a, w, b), self.eps), w)

    def factor_at_root(self, delta, relevance, weight, apply, vjp):
        w = weight + self.gamma * weight.clamp(min=0)
        return vjp(divide_relative(relevance, apply(delta, w, None)), w)


class OpRule:
    """The rule of a parameter-free op: the relevance it sends to each of its activation inputs."""

    def relevance(self, node, env, inputs, r, override, factor_wanted):
        """``{input node: (relevance, factor)}`` given ``r`` at ``node``'s output.

        Parameters
        ----------
        node : torch.fx.Node
            The op.
        env : dict
            node -> value of the forward pass.
        inputs : list of torch.fx.Node
            ``node``'s activation (signal) inputs, each once.
        r : torch.Tensor or list
            The relevance at the output (a list for ops of several outputs), the output's shape.
        override : dict
            ``{input node: masked activation}`` to recompute with (PLRP-M); empty otherwise.
        factor_wanted : set
            Inputs whose hypothetical factor (``relevance = input * factor``) is wanted.

        Returns
        -------
        dict
            input node -> ``(relevance, factor)``; ``factor`` is ``None`` where the op has none of its own
            (see :meth:`factor_through`).
        """
        raise NotImplementedError

    def factor_through(self, node, env, a, c_out):
        """The hypothetical factor at input ``a`` given the factor ``c_out`` at the output, for the
        identity and routing ops between the input sequence and the first layers."""
        raise NotImplementedError


class PassThrough(OpRule):
    """Element-wise activations and identities: relevance, and the hypothetical factor, pass unchanged."""

    def relevance(self, node, env, inputs, r, override, factor_wanted):
        return {inputs[0]: (r, None)}

    def factor_through(self, node, env, a, c_out):
        return c_out


class Route(OpRule):
    """Ops that move entries around: relevance follows their vector-Jacobian product."""

    def relevance(self, node, env, inputs, r, override, factor_wanted):
        _, grads = node_vjp(node, env, inputs, r if isinstance(r, list) else [r])
        return {a: (g, None) for a, g in zip(inputs, grads)}

    def factor_through(self, node, env, a, c_out):
        return node_vjp(node, env, [a], c_out if isinstance(c_out, list) else [c_out])[1][0]


@dataclass(frozen=True)
class SumEpsilon(OpRule):
    """The epsilon rule for parameter-free linear ops: ``R_i = x_i * vjp(R / stab(y))``."""

    eps: float = 1e-6

    def relevance(self, node, env, inputs, r, override, factor_wanted):
        op = getattr(node.target, "overloadpacket", node.target)
        if (
            op is torch.ops.aten.add
            and not node.kwargs
            and len(inputs) == 2
            and all(env[a].shape == env[node].shape for a in inputs)
        ):  # a residual sum, the common case: no autograd needed
            vals = [override.get(a, env[a]) for a in inputs]
            out = vals[0] + vals[1] if override else env[node]
            if not any(a in factor_wanted for a in inputs):  # the factor s is not needed: one pass
                r_u, r_v = split_sum(r, out, vals[0], vals[1], self.eps)
                return {inputs[0]: (r_u, None), inputs[1]: (r_v, None)}
            s = divide_stabilized(r, out, self.eps)
            return {a: (v * s, s) for a, v in zip(inputs, vals)}
        if override:
            local = dict(env)
            local.update(override)
            out = node.target(*resolve(node.args, local), **resolve(node.kwargs, local))
        else:
            out = env[node]
        out = out[0] if isinstance(out, (tuple, list)) else out
        rs = r if isinstance(r, list) else [r]
        s = divide_stabilized(rs[0], out, self.eps)
        _, grads = node_vjp(node, env, inputs, [s], override)
        return {a: (override.get(a, env[a]) * g, g) for a, g in zip(inputs, grads)}


@dataclass
class Composite:
    """Which rule each linear layer gets: by layer name (glob patterns, first match wins), else by type.

    ``first`` is for layers that read the input sequence (epsilon: absent bases get exactly zero),
    ``conv`` for hidden convolutions, ``linear`` for Linear layers; ``ops`` the rules of the
    parameter-free ops by kind (``pass``, ``route``, ``sum``), ``sum`` with the epsilon ``eps``.
    ``root`` is the root point the input's relevance is taken against (:data:`ROOTS`, :func:`at_root`).
    """

    first: LayerRule = field(default_factory=Epsilon)
    conv: LayerRule = field(default_factory=ZPlus)
    linear: LayerRule = field(default_factory=Epsilon)
    names: dict = field(default_factory=dict)
    eps: float = 1e-6  # epsilon of the parameter-free linear ops (sums, means, average pools)
    ops: dict = None
    root: str = "zero"

    def __post_init__(self):
        if self.root not in ROOTS:
            raise PlrpError(
                f"unknown LRP root {self.root!r}. Fix: choose one of {', '.join(ROOTS)}"
            )
        if self.ops is None:
            self.ops = {"pass": PassThrough(), "route": Route(), "sum": SumEpsilon(self.eps)}

    def rule_for(self, name, kind, is_first):
        """The :class:`LayerRule` of a layer called ``name`` of ``kind`` ('conv' or 'linear')."""
        for pattern, rule in self.names.items():
            if fnmatch.fnmatchcase(name, pattern):
                return rule
        if is_first:
            return self.first
        return self.conv if kind == "conv" else self.linear

    def op_rule(self, kind):
        """The :class:`OpRule` of the parameter-free ops of ``kind`` (``pass``, ``route`` or ``sum``)."""
        return self.ops[kind]


def make_rule(spec, eps=1e-6):
    """A :class:`LayerRule` from a config value: a name (``"zplus"``) or a mapping
    (``{"rule": "gamma", "gamma": 0.5}``); ``eps`` where the spec sets none."""
    if isinstance(spec, LayerRule):
        return spec
    params = {"rule": spec} if isinstance(spec, str) else dict(spec)
    name = params.pop("rule", params.pop("name", "epsilon"))
    if name not in RULES:
        raise PlrpError(f"unknown LRP rule {name!r}. Fix: choose one of {', '.join(RULES)}")
    try:
        return RULES[name](**{"eps": eps, **params})
    except TypeError:
        fields = ", ".join(f for f in RULES[name].__dataclass_fields__ if f != "name")
        raise PlrpError(
            f"LRP rule {name} takes only {fields}, not {', '.join(sorted(params))}. Fix: remove the rest"
        ) from None


def root_point(x, root):
    """The root point ``x~`` (``x``'s shape) the input's relevance is taken against, or ``None`` for
    ``zero`` (LRP's own: the rules take their layers' ``z`` as they are). ``uniform``: each position's
    input mass spread evenly over the ``C`` channels (0.25 per base of a one-hot column, 0 for N)."""
    if root == "zero":
        return None
    return x.sum(1, keepdim=True).div(x.shape[1]).expand_as(x)


def at_root(x, relevance, hypothetical, root):
    """The input's relevance taken against the root point ``root`` (:data:`ROOTS`, :func:`root_point`).

    The first layers take their rule against the root point (:func:`lrp.engine.graph.root_inputs`): the
    rule applied to ``x - x~``, whose ``z - z~`` holds no bias (LRP's root-point form, DeepLIFT's rescale at
    the first layer), gives the hypothetical factor ``h`` with ``R_c = (x_c - x~_c) h_c``, which conserves
    the first layers' relevance up to the stabilizer (:func:`divide_relative`). A bias in the denominator would flip the relevance's sign wherever
    ``W x`` and ``W x + b`` differ in sign: under an activation that is not zero below 0 (``exp``, Koo &
    Ploenzke 2021), whose bias is learned negative, it put the sites' relevance below zero (measured in
    ``docs/plrp-method.md``). ``uniform``: the position's relevance, ``sum_c (x_c - x~_c) h_c``, is kept on
    the base it holds: ``h' = h - mean_c h`` and ``R' = x h'``, so the output stays in the format of the
    other methods (zero on absent bases and on N). Applied to a gradient, ``h - mean_c h`` is the correction
    of Majdandzic et al. 2023 (off-simplex gradients removed); here it is LRP's first step.

    Parameters
    ----------
    x, relevance, hypothetical : torch.Tensor
        (N, C, L) the input, its relevance against zero and the hypothetical factor.
    root : str
        One of :data:`ROOTS`; ``zero`` returns the inputs unchanged.

    Returns
    -------
    (relevance, hypothetical) : tuple of torch.Tensor
        (N, C, L) each.
    """
    if root == "zero":
        return relevance, hypothetical
    mean = hypothetical.mean(1, keepdim=True)
    return relevance - x * mean, hypothetical - mean


def composite(spec=None, signed_target=False):
    """Build a :class:`Composite` from a config mapping, e.g.
    ``{"eps": 1e-6, "first": "epsilon", "conv": "zplus", "linear": "epsilon",
    "names": {"body.3.*": {"rule": "gamma", "gamma": 0.5}}, "root": "uniform"}``. ``None`` gives the
    default composite; unset keys keep the default's rule (and root, :data:`ROOT`).

    The default's hidden-convolution rule depends on the target: z-plus for a single logit or count,
    epsilon for a signed target (``signed_target``, :func:`lrp.engine.target.is_signed`: the profile head).
    z-plus sends a neuron's relevance only along its positive contributions, so the negative relevance a
    signed target starts with flows to the same inputs as the positive and the two cancel on the sites
    (measured in ``docs/plrp-method.md``: worse than random on a BPNet profile head).
    """
    if isinstance(spec, Composite):
        return spec
    spec = dict(spec or {})
    eps = float(spec.pop("eps", 1e-6))
    defaults = Composite(conv=Epsilon()) if signed_target else Composite()
    layers = {
        key: make_rule(spec.pop(key), eps) if key in spec else type(getattr(defaults, key))(eps=eps)
        for key in ("first", "conv", "linear")
    }
    names = {k: make_rule(v, eps) for k, v in (spec.pop("names", None) or {}).items()}
    root = spec.pop("root", ROOT)
    if spec:
        raise PlrpError(
            f"unknown LRP rule keys: {', '.join(sorted(spec))}. "
            "Fix: use eps, first, conv, linear, names, root"
        )
    return Composite(**layers, names=names, eps=eps, root=root)


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


#: the stabilizer of a first layer taken against the root point, relative to the layer's typical
#: ``|z - z~|`` in the window (:func:`divide_relative`): 0.25, the "0.25 std" of LRP-epsilon's usual setting
#: (Montavon et al. 2019). Measured: 0.1, 0.25 and 0.5 rank the sites alike (docs/plrp-method.md).
ROOT_EPS = 0.25


def divide_relative(relevance, dz, share=ROOT_EPS):
    """``relevance / (dz + share * scale * sign(dz))``, ``sign(0) = 1``: the epsilon rule's division with a
    stabilizer relative to the layer's typical ``|dz|`` (``scale``: the mean ``|dz|`` over the positions of
    each window and channel of a convolution ``(N, C, L)``, over the units of each window of a Linear
    layer ``(N, C)``); 0 where ``scale`` is 0 (the input equals the root point: a window of N).

    ``dz = z - z~`` holds no bias, so it is near zero for a neuron whose input is as at the root point,
    while the relevance it got from above follows its activation, not ``dz``: an absolute epsilon let such
    neurons send relevance hundreds of times the rest (max / 99th percentile up to 820 on a trained CNN,
    and the sites' AUPRC fell). Relative to the layer's scale, those neurons keep a bounded share."""
    dims = tuple(range(2, dz.dim())) if dz.dim() > 2 else (1,)
    scale = dz.abs().mean(dims, keepdim=True).mul_(share)
    out = relevance / (dz + torch.copysign(scale, dz))
    # scale 0: the input equals the root point there (a window of N), so nothing is split: factor 0
    return torch.where(scale > 0, out, torch.zeros((), dtype=out.dtype, device=out.device))


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
