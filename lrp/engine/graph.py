"""The model as a graph of aten ops, and the LRP walk over it.

Any model, a Python ``nn.Module`` or a loaded ``torch.export`` program (``.pt2``), becomes an exported fx graph of
aten ops. :func:`plan` classifies every node that carries the input's signal, merges BatchNorm into the linear
layer before it and picks each layer's rule; an op it cannot explain raises an error naming it before any work
is done. :func:`forward` runs the graph keeping every activation; :func:`backward` walks it in reverse and
redistributes relevance:

- linear layers (Conv1d, Linear, addmm/mm/matmul with constant weights), BatchNorm merged in: the layer's rule
  (epsilon, z-plus, gamma; see :mod:`lrp.engine.rules`), then PLRP pruning of the relevance at their input;
- parameter-free linear ops (``x + y``, ``x - y``, scaling, means, sums, average pools, standalone BatchNorm):
  the epsilon rule, so a residual sum splits ``R`` in proportion to its terms;
- element-wise activations and eval-mode dropout: relevance passes unchanged;
- routing ops (reshape/view/flatten/squeeze/permute, slicing/cropping, ``cat``, max pooling, padding):
  relevance follows the op's own routing (its vector-Jacobian product), which is exact for them.
"""

import fnmatch
import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx

from lrp.core.errors import PlrpError
from lrp.engine.conv import conv1d, conv1d_input_vjp
from lrp.engine.prune import prune, rescale_kept, zero_pruned
from lrp.engine.rules import divide_stabilized, linear_rule_factor, split_sum
from lrp.engine.target import select_output

aten = torch.ops.aten

LAYER_OPS = {aten.conv1d, aten.convolution, aten.linear, aten.addmm, aten.mm, aten.matmul}
BATCHNORM_OPS = {aten.batch_norm, aten._native_batch_norm_legit_no_training}
# ops that pass the signal through unchanged in eval mode (the hypothetical scores may follow them too)
IDENTITY_OPS = {
    aten.clone,
    aten.alias,
    aten.contiguous,
    aten._to_copy,
    aten.lift_fresh_copy,
    aten.dropout,
    aten.feature_dropout,
    aten.alpha_dropout,
    aten.to,
}
# element-wise activations and identities: relevance passes unchanged
PASS_OPS = IDENTITY_OPS | {
    aten.relu,
    aten.leaky_relu,
    aten.elu,
    aten.gelu,
    aten.softplus,
    aten.silu,
    aten.sigmoid,
    aten.tanh,
    aten.hardtanh,
    aten.relu6,
    aten.celu,
    aten.selu,
    aten.mish,
    aten.hardswish,
    aten.hardsigmoid,
    aten.prelu,
}
ROUTE_OPS = {
    aten.view,
    aten.reshape,
    aten._unsafe_view,
    aten.flatten,
    aten.unflatten,
    aten.squeeze,
    aten.unsqueeze,
    aten.permute,
    aten.transpose,
    aten.t,
    aten.slice,
    aten.select,
    aten.narrow,
    aten.cat,
    aten.stack,
    aten.split,
    aten.split_with_sizes,
    aten.chunk,
    aten.unbind,
    aten.expand,
    aten.repeat,
    aten.max_pool1d,
    aten.max_pool1d_with_indices,
    aten.adaptive_max_pool1d,
    aten.amax,
    aten.max,
    aten.constant_pad_nd,
    aten.pad,
    aten.flip,
    aten.roll,
    aten.index_select,
    aten.view_copy,
    aten.squeeze_copy,
    aten.unsqueeze_copy,
    aten.permute_copy,
    aten.slice_copy,
    aten.expand_copy,
}
LINEAR_OPS = {
    aten.add,
    aten.sub,
    aten.rsub,
    aten.mul,
    aten.div,
    aten.neg,
    aten.mean,
    aten.sum,
    aten.avg_pool1d,
    aten.adaptive_avg_pool1d,
}


def _packet(node):
    target = node.target
    return getattr(target, "overloadpacket", target)


def _nodes_in(value):
    """The fx nodes inside a (possibly nested) argument."""
    out = []
    fx.node.map_arg(value, out.append)
    return out


@dataclass
class Layer:
    """A linear layer of the graph: its op node, the node whose output is ``z`` (after a merged BatchNorm)."""

    node: fx.Node
    out: fx.Node
    name: str
    kind: str  # 'conv' or 'linear'
    is_first: bool
    input: fx.Node = None
    weight: torch.Tensor = None
    bias: torch.Tensor = None
    conv_args: tuple = ()
    rule: object = None
    p_pos: float = 0.0
    p_neg: float = 0.0
    nonneg_input: bool = False  # the input is >= 0 by construction (after a ReLU, say)


@dataclass
class Plan:
    """Everything the walk needs, decided once per model."""

    program: object
    input: fx.Node
    output: fx.Node  # the explained output
    nodes: list  # the call_function nodes that compute it, in graph order
    consts: dict
    activations: set
    live: set
    layers: dict = field(default_factory=dict)  # out node -> Layer
    convs: dict = field(default_factory=dict)  # conv node -> (stride, padding, dilation, groups)
    absorbed: set = field(default_factory=set)
    input_path: set = field(default_factory=set)
    static_batch: int = None
    eps: float = 1e-6  # epsilon of the parameter-free linear ops

    def to(self, device):
        """Move the constants and the layers' (merged) weights to ``device``; the program is not touched."""
        move = lambda t: t.to(device) if torch.is_tensor(t) else t
        self.consts = {k: move(v) for k, v in self.consts.items()}
        for layer in self.layers.values():
            layer.weight, layer.bias = move(layer.weight), move(layer.bias)
        return self


def export_program(model, length, channels=4, example_batch=2):
    """Export an ``nn.Module`` to a ``torch.export`` program with a dynamic batch dimension.

    The user's model is not changed: a copy in eval mode is exported. Falls back to a fixed batch of
    ``example_batch`` when the model's code fixes it.
    """
    import copy

    if isinstance(model, torch.export.ExportedProgram):
        return model
    module = copy.deepcopy(model).eval()
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(example_batch, channels, length, dtype=dtype, device=device)
    x[:, 0] = 1
    try:
        return torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception:  # noqa: BLE001 - the model fixes its batch size; export at a fixed one
        try:
            return torch.export.export(module, (x,))
        except Exception as err:
            raise PlrpError(
                f"the model could not be traced into a graph by torch.export ({type(err).__name__}: "
                f"{str(err).splitlines()[0]}). Fix: remove data-dependent Python control flow from forward"
            ) from err


def _tensor_valued(node):
    """Whether a node outputs tensors (not sizes or other symbolic scalars)."""
    val = node.meta.get("val")
    if val is None:
        return True
    if isinstance(val, (tuple, list)):
        return any(isinstance(v, torch.Tensor) for v in val)
    return isinstance(val, torch.Tensor)


def _layer_name(node):
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.values())[-1][0]
        for prefix in ("L__self___", "L['self']."):
            path = path.replace(prefix, "")
        return path or node.name
    return node.name


def _scalar_or_const(value, consts):
    return not isinstance(value, fx.Node) or value in consts


def plan(program, composite, target, p_pos=0.0, p_neg=0.0, p_layers=None, merge_batchnorm=True):
    """Classify the part of ``program``'s graph that computes the explained output for the LRP walk; raise
    :class:`PlrpError` on an op it can't explain.

    target: the normalized target (:func:`lrp.engine.target.normalize_target`); only its ``output`` is used here.
    Nodes that only feed other outputs (a profile head when the counts are explained) are neither run nor
    pruned: the explanation of one output does not depend on the model's other heads.
    p_layers: ``{layer-name glob: (p_pos, p_neg)}`` overrides of the pruning proportions.
    """
    graph = program.graph
    sig = program.graph_signature
    values = {}
    for spec in sig.input_specs:
        if spec.kind.name == "USER_INPUT":
            continue
        name = spec.target
        values[spec.arg.name] = (
            program.state_dict[name] if name in program.state_dict else program.constants[name]
        )
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    user = [n for n in placeholders if n.name not in values]
    if len(user) != 1:
        raise PlrpError(
            f"the model takes {len(user)} inputs; plrp explains models of one sequence input"
        )
    x_node = user[0]
    consts = {n: values[n.name] for n in placeholders if n.name in values}
    get_attrs = [n for n in graph.nodes if n.op == "get_attr"]
    for n in get_attrs:
        consts[n] = getattr(program.graph_module, n.target)

    output_node = next(n for n in graph.nodes if n.op == "output")
    outputs = (
        list(output_node.args[0])
        if isinstance(output_node.args[0], (tuple, list))
        else [output_node.args[0]]
    )
    spec = program.call_spec.out_spec
    names = list(range(len(outputs)))
    if spec is not None and spec.type is dict:
        names = list(spec.context)

    which = select_output(outputs, names, target)
    output = outputs[which]
    if not isinstance(output, fx.Node) or output is x_node:
        raise PlrpError(
            f"output {names[which]!r} of the model is the input or a constant, nothing to explain. Fix: set "
            "target.output to an output the model computes from the sequence"
        )
    activations = {x_node}
    for n in graph.nodes:
        if (
            n.op == "call_function"
            and _tensor_valued(n)
            and any(a in activations for a in _nodes_in((n.args, n.kwargs)))
        ):
            activations.add(n)
    needed = set()  # every node the output is computed from
    stack = [output]
    while stack:
        n = stack.pop()
        if n not in needed:
            needed.add(n)
            stack.extend(_nodes_in((n.args, n.kwargs)))
    live = set()  # the nodes the signal reaches the output through
    stack = [output]
    while stack:
        n = stack.pop()
        if n not in live and n in activations:
            live.add(n)
            stack.extend(_nodes_in((n.args, n.kwargs)))
    nodes = [n for n in graph.nodes if n in needed and n.op == "call_function"]

    p = Plan(program, x_node, output, nodes, consts, activations, live, eps=composite.eps)
    val = x_node.meta.get("val")
    if val is not None and isinstance(val.shape[0], int):
        p.static_batch = int(val.shape[0])

    def users(n):
        return [u for u in n.users if u in live]

    # linear layers, BatchNorm merge
    for n in graph.nodes:
        if n not in live or n.op != "call_function":
            continue
        op = _packet(n)
        if op is operator.getitem:
            continue
        if op in LAYER_OPS:
            p.layers[n] = _make_layer(n, op, consts)
        elif op in BATCHNORM_OPS:
            training = n.args[5] if op is aten.batch_norm and len(n.args) > 5 else False
            if training:
                raise PlrpError(
                    f"BatchNorm '{_layer_name(n)}' runs in training mode. Fix: export model.eval()"
                )
        elif op in PASS_OPS:
            if op is aten.dropout and len(n.args) > 2 and n.args[2]:
                raise PlrpError(
                    f"dropout '{_layer_name(n)}' runs in training mode. Fix: export model.eval()"
                )
        elif op in ROUTE_OPS or op in LINEAR_OPS:
            if op in (aten.mul, aten.div):
                acts = [a for a in _nodes_in(n.args) if a in activations]
                if len(acts) > 1 or (op is aten.div and n.args[1] in activations):
                    raise PlrpError(
                        f"op {n.target} ('{n.name}' in '{_layer_name(n)}') multiplies two signals, which LRP "
                        "has no rule for here. Fix: explain a model without gating, or ask for a rule"
                    )
        else:
            raise PlrpError(
                f"op {n.target} ('{n.name}' in module '{_layer_name(n)}') has no LRP rule in plrp. Fix: "
                "use supported layers (Conv1d, Linear, BatchNorm1d, pooling, element-wise activations, "
                "residual sums, reshapes, slicing, cat) or open an issue naming this op"
            )
    if merge_batchnorm:
        for layer in list(p.layers.values()):
            us = users(layer.node)
            if len(us) == 1 and _packet(us[0]) in BATCHNORM_OPS and us[0].args[0] is layer.node:
                bn = us[0]
                out = bn
                if _packet(bn) is aten._native_batch_norm_legit_no_training:
                    gets = users(bn)
                    if len(gets) != 1 or gets[0].args[1] != 0:
                        continue
                    out = gets[0]
                _merge_batchnorm(layer, bn, consts)
                del p.layers[layer.node]
                p.absorbed.update({layer.node, bn} - {out})
                layer.out = out
                p.layers[out] = layer

    # first layers: no linear layer upstream
    layer_nodes = {layer.node for layer in p.layers.values()}
    upstream = {}
    for n in graph.nodes:
        if n not in activations:
            continue
        ins = [a for a in _nodes_in((n.args, n.kwargs)) if a in activations]
        upstream[n] = any(upstream.get(a, False) or a in layer_nodes for a in ins)
    for layer in p.layers.values():
        layer.is_first = not upstream.get(layer.node, False)
        layer.rule = composite.rule_for(layer.name, layer.kind, layer.is_first)
        layer.nonneg_input = _nonnegative(layer.input, activations)
        layer.p_pos, layer.p_neg = (0.0, 0.0) if layer.is_first else (p_pos, p_neg)
        for pattern, (pp, pn) in (p_layers or {}).items():
            if not layer.is_first and fnmatch.fnmatchcase(layer.name, pattern):
                layer.p_pos, layer.p_neg = pp, pn
                break

    p.convs = {layer.node: layer.conv_args for layer in p.layers.values() if layer.kind == "conv"}

    # the input path: the input and identity/routing ops on it, up to the first layers
    p.input_path = {x_node}
    for n in graph.nodes:
        if n in live and n not in p.layers and n not in p.absorbed:
            op = _packet(n)
            ins = [a for a in _nodes_in((n.args, n.kwargs)) if a in activations]
            if (
                (op in IDENTITY_OPS or op in ROUTE_OPS or op is operator.getitem)
                and ins
                and all(a in p.input_path for a in ins)
            ):
                p.input_path.add(n)
    return p


NONNEG_OPS = {aten.relu, aten.relu6, aten.sigmoid, aten.softplus, aten.hardsigmoid}
# outputs >= 0 where every signal input is: routing (padding with zeros), sums, means, average pools
KEEP_SIGN_OPS = (IDENTITY_OPS | ROUTE_OPS | {aten.mean, aten.sum, aten.avg_pool1d}) - {
    aten.constant_pad_nd,
    aten.pad,
}


def _nonnegative(node, activations, memo=None):
    """Whether ``node``'s output is >= 0 for every input, by the ops that make it (conservative: False when
    in doubt). Lets the z-plus rule skip a check of the activations that would wait on the device."""
    memo = {} if memo is None else memo
    if node in memo:
        return memo[node]
    memo[node] = False  # cycles cannot occur in an fx graph; this also bounds the recursion
    op = _packet(node) if node.op == "call_function" else None
    ins = [a for a in _nodes_in((node.args, node.kwargs)) if a in activations]
    if op in NONNEG_OPS:
        result = True
    elif op is operator.getitem or op in KEEP_SIGN_OPS or op is aten.adaptive_avg_pool1d:
        result = bool(ins) and all(_nonnegative(a, activations, memo) for a in ins)
    elif op is aten.add and not node.kwargs and len(ins) == len(node.args) == 2:
        result = all(_nonnegative(a, activations, memo) for a in ins)
    else:
        result = False
    memo[node] = result
    return result


def _make_layer(n, op, consts):
    args = list(n.args) + [None] * 9
    name = _layer_name(n)

    def const(value, what):
        if value is None:
            return None
        if value not in consts and isinstance(value, fx.Node):
            raise PlrpError(
                f"layer '{name}' ({n.target}) takes its {what} from the input signal, which LRP has no rule "
                "for. Fix: use constant weights"
            )
        return consts[value] if isinstance(value, fx.Node) else value

    if op is aten.conv1d:
        stride, padding, dilation, groups = args[3] or 1, args[4] or 0, args[5] or 1, args[6] or 1
        kw = n.kwargs
        stride, padding = kw.get("stride", stride), kw.get("padding", padding)
        dilation, groups = kw.get("dilation", dilation), kw.get("groups", groups)
        return Layer(
            n,
            n,
            name,
            "conv",
            False,
            args[0],
            const(args[1], "weight"),
            const(args[2], "bias"),
            (stride, padding, dilation, groups),
        )
    if op is aten.convolution:
        if args[6]:
            raise PlrpError(
                f"layer '{name}' is a transposed convolution, which plrp does not explain"
            )
        weight = const(args[1], "weight")
        if weight.dim() != 3:
            raise PlrpError(
                f"layer '{name}' is a {weight.dim() - 2}-d convolution; plrp explains Conv1d"
            )
        return Layer(
            n,
            n,
            name,
            "conv",
            False,
            args[0],
            weight,
            const(args[2], "bias"),
            (args[3], args[4], args[5], args[8]),
        )
    if op is aten.linear:
        return Layer(
            n, n, name, "linear", False, args[0], const(args[1], "weight"), const(args[2], "bias")
        )
    if op is aten.addmm:
        return Layer(
            n,
            n,
            name,
            "linear",
            False,
            args[1],
            const(args[2], "weight").t(),
            const(args[0], "bias"),
        )
    weight = const(args[1], "weight")
    if weight.dim() != 2:
        raise PlrpError(
            f"layer '{name}' ({n.target}) multiplies by a {weight.dim()}-d tensor; not supported"
        )
    return Layer(n, n, name, "linear", False, args[0], weight.t(), None)


def _merge_batchnorm(layer, bn, consts):
    """Fold an eval-mode BatchNorm into the layer's weight and bias (on copies)."""
    a = list(bn.args) + [None] * 9
    if _packet(bn) is aten.batch_norm:
        weight, bias, mean, var, eps = a[1], a[2], a[3], a[4], a[7]
    else:
        weight, bias, mean, var, eps = a[1], a[2], a[3], a[4], a[6]
    mean, var = consts[mean], consts[var]
    gamma = consts[weight] if weight is not None else torch.ones_like(mean)
    beta = consts[bias] if bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + eps)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    b = layer.bias if layer.bias is not None else torch.zeros_like(mean)
    layer.weight = layer.weight * scale.reshape(shape)
    layer.bias = (b - mean) * scale + beta


def _resolve(value, env):
    return fx.node.map_arg(value, lambda n: env[n])


def forward(plan, x):
    """Run the graph on ``x`` (N, C, L) as far as the explained output needs; return ``env``: node -> value.
    Convolutions run through :func:`lrp.engine.conv.conv1d` (its fast path for few output channels)."""
    env = dict(plan.consts)
    env[plan.input] = x
    for n in plan.nodes:
        args, kwargs = _resolve(n.args, env), _resolve(n.kwargs, env)
        if n in plan.convs:
            bias = kwargs.get("bias", args[2] if len(args) > 2 else None)
            env[n] = conv1d(args[0], args[1], bias, *plan.convs[n])
        else:
            env[n] = n.target(*args, **kwargs)
    return env


def _conv_apply(conv_args):
    def apply(a, w, b):
        return conv1d(a, w, b, *conv_args)

    return apply


def _conv_vjp(a, conv_args):
    def vjp(s, w):
        return conv1d_input_vjp(s, a, w, *conv_args)

    return vjp


def _layer_factor(layer, a, relevance, z):
    if layer.kind == "conv":
        apply, vjp = _conv_apply(layer.conv_args), _conv_vjp(a, layer.conv_args)
    else:

        def apply(a_, w, b):
            return F.linear(a_, w, b)

        def vjp(s, w):
            return s @ w

    factor = linear_rule_factor(
        layer.rule, a, relevance, layer.weight, layer.bias, apply, vjp, z, layer.nonneg_input
    )
    return factor, apply, vjp


def _vjp(node, env, inputs, grads_out, override=None):
    """Vector-Jacobian product of ``node`` w.r.t. its activation ``inputs``, given output cotangents.

    override: ``{node: tensor}`` values to use instead of ``env`` (PLRP-M's masked activations).
    """
    local = dict(env)
    local.update(override or {})
    leaves = {a: local[a].detach().requires_grad_() for a in inputs}
    local.update(leaves)
    with torch.enable_grad():
        out = node.target(*_resolve(node.args, local), **_resolve(node.kwargs, local))
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        pairs = [
            (o, g) for o, g in zip(outs, grads_out) if g is not None and isinstance(o, torch.Tensor)
        ]
        grads = torch.autograd.grad(
            [o for o, _ in pairs],
            [leaves[a] for a in inputs],
            [g for _, g in pairs],
            allow_unused=True,
        )
    return out, [torch.zeros_like(env[a]) if g is None else g for a, g in zip(inputs, grads)]


def propagate(plan, env, n, r, override=None):
    """Relevance that node ``n`` sends to each of its activation inputs, given ``r`` at its output.

    Returns ``{input node: (relevance, factor)}`` where ``relevance = input * factor`` for linear ops (the
    factor feeds the hypothetical scores) and ``factor`` is ``None`` for pass-through and routing ops.
    override: ``{input node: masked activation}`` to recompute with (PLRP-M).
    """
    override = override or {}
    op = _packet(n)
    if n in plan.layers:
        layer = plan.layers[n]
        a = override.get(layer.input, env[layer.input])
        z = None if layer.input in override else env[n]
        factor, _, _ = _layer_factor(layer, a, r, z)
        return {layer.input: (a * factor, factor)}
    acts = [a for a in dict.fromkeys(_nodes_in((n.args, n.kwargs))) if a in plan.activations]
    rs = r if isinstance(r, list) else [r]
    if op in PASS_OPS:
        return {acts[0]: (r, None)}
    if op in ROUTE_OPS:
        _, grads = _vjp(n, env, acts, rs)
        return {a: (g, None) for a, g in zip(acts, grads)}
    # parameter-free linear ops and standalone BatchNorm: the epsilon rule
    if (
        op is aten.add
        and not n.kwargs
        and len(acts) == 2
        and all(env[a].shape == env[n].shape for a in acts)
    ):  # a residual sum, the common case: no autograd needed
        vals = [override.get(a, env[a]) for a in acts]
        out = vals[0] + vals[1] if override else env[n]
        if not any(a in plan.input_path for a in acts):  # the factor s is not needed: one pass
            r_u, r_v = split_sum(r, out, vals[0], vals[1], plan.eps)
            return {acts[0]: (r_u, None), acts[1]: (r_v, None)}
        s = divide_stabilized(r, out, plan.eps)
        return {a: (v * s, s) for a, v in zip(acts, vals)}
    if override:
        local = dict(env)
        local.update(override)
        out = n.target(*_resolve(n.args, local), **_resolve(n.kwargs, local))
    else:
        out = env[n]
    out = out[0] if isinstance(out, (tuple, list)) else out
    s = divide_stabilized(rs[0], out, plan.eps)
    _, grads = _vjp(n, env, acts, [s], override)
    return {a: (override.get(a, env[a]) * g, g) for a, g in zip(acts, grads)}


def backward(plan, env, initial, method="lrp", return_layers=False):
    """Walk the graph backwards from ``initial`` (output node -> initial relevance).

    method: ``lrp``, ``plrp-lambda`` or ``plrp-m``. Pruning acts on the total relevance of every hidden
    representation that feeds a linear layer (not the first), once all of its consumers have sent theirs:
    the pruned set follows the mass quantiles of that total. PLRP-M recomputes what each linear layer sends
    with the pruned neurons removed; what other consumers send (a residual skip, say) has no weights to
    flow through, so its kept entries are rescaled per sign as in PLRP-λ.
    Returns ``(relevance, hypothetical, layers)``: relevance and hypothetical scores at the input
    (input's shape), and ``{layer name: relevance at the layer's input after pruning}`` when asked.
    """
    relevance, factors, layers, sent = {}, {}, {}, {}
    pruned_at = {}
    for layer in plan.layers.values():
        pruned_at.setdefault(layer.input, layer)

    def add(store, node, value):
        store[node] = value if node not in store else store[node] + value

    for node, value in initial.items():
        add(relevance, node, value)
    for n in reversed([n for n in plan.nodes if n in plan.live]):
        if n in plan.absorbed:
            continue
        r = relevance.pop(n, None)
        c_out = factors.pop(n, None)
        if r is None:
            continue
        layer = pruned_at.get(n)
        if layer is not None and method != "lrp" and (layer.p_pos > 0 or layer.p_neg > 0):
            pruned = prune(r, layer.p_pos, layer.p_neg)
            if method == "plrp-lambda":
                r = pruned
            else:  # plrp-m: linear layers recompute what they send with the pruned neurons removed
                kept = {n: zero_pruned(env[n], r, pruned)}
                r = sum(
                    propagate(plan, env, u, r_u, kept)[n][0]
                    if u in plan.layers
                    else rescale_kept(r_sent, r, pruned)  # no weights to redistribute through
                    for u, r_u, r_sent in sent.pop(n)
                )
        if layer is not None and return_layers:
            layers[layer.name] = r.detach()
        if _packet(n) is operator.getitem:
            parent, i = n.args
            slot = relevance.setdefault(parent, [None] * len(env[parent]))
            slot[i] = r if slot[i] is None else slot[i] + r
            if c_out is not None:
                cslot = factors.setdefault(parent, [None] * len(env[parent]))
                cslot[i] = c_out if cslot[i] is None else cslot[i] + c_out
            continue
        for a, (r_a, factor) in propagate(plan, env, n, r).items():
            add(relevance, a, r_a)
            if method == "plrp-m" and a in pruned_at:
                sent.setdefault(a, []).append((n, r, r_a))
            if a in plan.input_path:
                if factor is None and c_out is not None:  # identity/routing: the factor follows
                    cs = c_out if isinstance(c_out, list) else [c_out]
                    factor = c_out if _packet(n) in PASS_OPS else _vjp(n, env, [a], cs)[1][0]
                if factor is not None:
                    add(factors, a, factor)
    x = env[plan.input]
    r_x = relevance.get(plan.input, torch.zeros_like(x))
    c_x = factors.get(plan.input, torch.zeros_like(x))
    if return_layers and plan.input in pruned_at:
        layers[pruned_at[plan.input].name] = r_x.detach()
    return r_x, c_x, layers
