"""The model as a graph of aten ops, and the LRP walk over it.

Any model, a Python ``nn.Module`` or a loaded ``torch.export`` program (``.pt2``), becomes an exported fx graph of
aten ops. :func:`plan` classifies every node that carries the input's signal (the op kinds are in
:mod:`lrp.engine.ops`), runs the canonizers (:mod:`lrp.engine.canonizers`: BatchNorm merged into the linear
layer before it) and picks each layer's and op's rule from the composite (:mod:`lrp.engine.rules`); an op it
cannot explain raises an error naming it before any work is done. :func:`forward` runs the graph keeping every
activation; :func:`backward` walks it in reverse and redistributes relevance by those rules:

- linear layers (Conv1d, Linear, addmm/mm/matmul with constant weights), BatchNorm merged in: the layer's rule
  (epsilon, z-plus, gamma), then PLRP pruning of the relevance at their input;
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
from lrp.engine.canonizers import MergeBatchNorm
from lrp.engine.conv import conv1d, conv1d_input_vjp
from lrp.engine.ops import (
    BATCHNORM_OPS,
    IDENTITY_OPS,
    KEEP_SIGN_OPS,
    LAYER_OPS,
    LINEAR_OPS,
    NONNEG_OPS,
    PASS_OPS,
    ROUTE_OPS,
    layer_name,
    nodes_in,
    packet,
    resolve,
    tensor_valued,
)
from lrp.engine.prune import prune, rescale_kept, zero_pruned
from lrp.engine.target import select_output

aten = torch.ops.aten


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
    rules: dict = field(default_factory=dict)  # other live op -> its lrp.engine.rules.OpRule
    static_batch: int = None

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


CANONIZERS = (MergeBatchNorm(),)


def plan(program, composite, target, p_pos=0.0, p_neg=0.0, p_layers=None, canonizers=CANONIZERS):
    """Classify the part of ``program``'s graph that computes the explained output for the LRP walk; raise
    :class:`PlrpError` on an op it can't explain.

    The plan is built by passes, in order: inputs and constants, the explained output, the signal's nodes,
    classification (layers and op rules), the canonizers, first layers, layer rules, pruning proportions,
    convolution arguments and the input path.

    Parameters
    ----------
    program : torch.export.ExportedProgram
        The model's graph (:func:`export_program`).
    composite : lrp.engine.rules.Composite
        The rules of the layers and ops.
    target : dict
        The normalized target (:func:`lrp.engine.target.normalize_target`); only its ``output`` is used.
    p_pos, p_neg : float
        The pruned shares of positive/negative relevance mass at every hidden layer's input.
    p_layers : dict, optional
        ``{layer-name glob: (p_pos, p_neg)}`` overrides of the pruning proportions.
    canonizers : sequence
        Objects with ``apply(plan)`` (:mod:`lrp.engine.canonizers`), run on the classified plan.

    Returns
    -------
    Plan
        Nodes that only feed other outputs (a profile head when the counts are explained) are neither run
        nor pruned: the explanation of one output does not depend on the model's other heads.
    """
    x_node, consts = _inputs_and_constants(program)
    output = _explained_output(program, x_node, target)
    activations = _signal(program.graph, x_node)
    p = Plan(
        program,
        x_node,
        output,
        _needed(program.graph, output),
        consts,
        activations,
        _live(output, activations),
    )
    val = x_node.meta.get("val")
    if val is not None and isinstance(val.shape[0], int):
        p.static_batch = int(val.shape[0])
    _classify(p, composite)
    for canonizer in canonizers:
        canonizer.apply(p)
    _mark_first_layers(p)
    _choose_layer_rules(p, composite)
    _pruning_proportions(p, p_pos, p_neg, p_layers or {})
    p.convs = {layer.node: layer.conv_args for layer in p.layers.values() if layer.kind == "conv"}
    p.input_path = _input_path(p)
    return p


def _inputs_and_constants(program):
    """The model's one sequence input node, and ``{node: tensor}`` of its parameters, buffers and
    constants (placeholders and ``get_attr`` nodes)."""
    graph = program.graph
    values = {}
    for spec in program.graph_signature.input_specs:
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
    consts = {n: values[n.name] for n in placeholders if n.name in values}
    for n in graph.nodes:
        if n.op == "get_attr":
            consts[n] = getattr(program.graph_module, n.target)
    return user[0], consts


def _explained_output(program, x_node, target):
    """The output node the target names; an output that is the input or a constant is an error."""
    output_node = next(n for n in program.graph.nodes if n.op == "output")
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
    return output


def _signal(graph, x_node):
    """The activations: the input and every tensor-valued op computed from it."""
    activations = {x_node}
    for n in graph.nodes:
        if (
            n.op == "call_function"
            and tensor_valued(n)
            and any(a in activations for a in nodes_in((n.args, n.kwargs)))
        ):
            activations.add(n)
    return activations


def _needed(graph, output):
    """The ``call_function`` nodes the output is computed from, in graph order (what :func:`forward` runs)."""
    needed = set()
    stack = [output]
    while stack:
        n = stack.pop()
        if n not in needed:
            needed.add(n)
            stack.extend(nodes_in((n.args, n.kwargs)))
    return [n for n in graph.nodes if n in needed and n.op == "call_function"]


def _live(output, activations):
    """The activations the signal reaches the output through (what the walk visits)."""
    live = set()
    stack = [output]
    while stack:
        n = stack.pop()
        if n not in live and n in activations:
            live.add(n)
            stack.extend(nodes_in((n.args, n.kwargs)))
    return live


def _classify(p, composite):
    """Every live op becomes a :class:`Layer` (``p.layers``) or gets its op rule (``p.rules``); an op
    with no rule, training-mode BatchNorm or dropout, or a product of two signals is an error."""
    for n in p.program.graph.nodes:
        if n not in p.live or n.op != "call_function":
            continue
        op = packet(n)
        if op is operator.getitem:
            continue
        if op in LAYER_OPS:
            p.layers[n] = _make_layer(n, op, p.consts)
            continue
        if op in BATCHNORM_OPS:
            training = n.args[5] if op is aten.batch_norm and len(n.args) > 5 else False
            if training:
                raise PlrpError(
                    f"BatchNorm '{layer_name(n)}' runs in training mode. Fix: export model.eval()"
                )
        elif op in PASS_OPS:
            if op is aten.dropout and len(n.args) > 2 and n.args[2]:
                raise PlrpError(
                    f"dropout '{layer_name(n)}' runs in training mode. Fix: export model.eval()"
                )
        elif op in (aten.mul, aten.div):
            acts = [a for a in nodes_in(n.args) if a in p.activations]
            if len(acts) > 1 or (op is aten.div and n.args[1] in p.activations):
                raise PlrpError(
                    f"op {n.target} ('{n.name}' in '{layer_name(n)}') multiplies two signals, which LRP "
                    "has no rule for here. Fix: explain a model without gating, or ask for a rule"
                )
        elif op not in ROUTE_OPS and op not in LINEAR_OPS:
            raise PlrpError(
                f"op {n.target} ('{n.name}' in module '{layer_name(n)}') has no LRP rule in plrp. Fix: "
                "use supported layers (Conv1d, Linear, BatchNorm1d, pooling, element-wise activations, "
                "residual sums, reshapes, slicing, cat) or open an issue naming this op"
            )
        kind = "pass" if op in PASS_OPS else "route" if op in ROUTE_OPS else "sum"
        p.rules[n] = composite.op_rule(kind)


def _mark_first_layers(p):
    """``layer.is_first``: no linear layer upstream (the layer reads the sequence, maybe reshaped)."""
    layer_nodes = {layer.node for layer in p.layers.values()}
    upstream = {}
    for n in p.program.graph.nodes:
        if n not in p.activations:
            continue
        ins = [a for a in nodes_in((n.args, n.kwargs)) if a in p.activations]
        upstream[n] = any(upstream.get(a, False) or a in layer_nodes for a in ins)
    for layer in p.layers.values():
        layer.is_first = not upstream.get(layer.node, False)


def _choose_layer_rules(p, composite):
    """``layer.rule`` from the composite, and ``layer.nonneg_input`` (its input is >= 0 by the graph)."""
    for layer in p.layers.values():
        layer.rule = composite.rule_for(layer.name, layer.kind, layer.is_first)
        layer.nonneg_input = _nonnegative(layer.input, p.activations)


def _pruning_proportions(p, p_pos, p_neg, p_layers):
    """``layer.p_pos, layer.p_neg``: the first layers' inputs are never pruned; the first ``p_layers``
    glob matching a layer's name overrides the global proportions."""
    for layer in p.layers.values():
        layer.p_pos, layer.p_neg = (0.0, 0.0) if layer.is_first else (p_pos, p_neg)
        for pattern, (pp, pn) in p_layers.items():
            if not layer.is_first and fnmatch.fnmatchcase(layer.name, pattern):
                layer.p_pos, layer.p_neg = pp, pn
                break


def _input_path(p):
    """The input and the identity/routing ops on it up to the first layers (where the hypothetical
    scores' factor is followed)."""
    path = {p.input}
    for n in p.program.graph.nodes:
        if n in p.live and n not in p.layers and n not in p.absorbed:
            op = packet(n)
            ins = [a for a in nodes_in((n.args, n.kwargs)) if a in p.activations]
            if (
                (op in IDENTITY_OPS or op in ROUTE_OPS or op is operator.getitem)
                and ins
                and all(a in path for a in ins)
            ):
                path.add(n)
    return path


def _nonnegative(node, activations, memo=None):
    """Whether ``node``'s output is >= 0 for every input, by the ops that make it (conservative: False when
    in doubt). Lets the z-plus rule skip a check of the activations that would wait on the device."""
    memo = {} if memo is None else memo
    if node in memo:
        return memo[node]
    memo[node] = False  # cycles cannot occur in an fx graph; this also bounds the recursion
    op = packet(node) if node.op == "call_function" else None
    ins = [a for a in nodes_in((node.args, node.kwargs)) if a in activations]
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
    name = layer_name(n)

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


def forward(plan, x):
    """Run the graph on ``x`` (N, C, L) as far as the explained output needs; return ``env``: node -> value.
    Convolutions run through :func:`lrp.engine.conv.conv1d` (its fast path for few output channels)."""
    env = dict(plan.consts)
    env[plan.input] = x
    for n in plan.nodes:
        args, kwargs = resolve(n.args, env), resolve(n.kwargs, env)
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


def _layer_factor(layer, a, relevance, z, root=None):
    """The factor of ``R_in = a * factor`` at ``layer`` by its rule; with ``root`` (the layer's input at
    the root point), of ``R_in = (a - root) * factor`` (:meth:`lrp.engine.rules.LayerRule.factor_at_root`)."""
    if layer.kind == "conv":
        apply, vjp = _conv_apply(layer.conv_args), _conv_vjp(a, layer.conv_args)
    else:

        def apply(a_, w, b):
            return F.linear(a_, w, b)

        def vjp(s, w):
            return s @ w

    if root is not None:
        return layer.rule.factor_at_root(a - root, relevance, layer.weight, apply, vjp)
    return layer.rule.factor(
        a, relevance, layer.weight, layer.bias, apply, vjp, z, layer.nonneg_input
    )


def root_inputs(plan, env, x_root):
    """The first layers' inputs at the root point ``x_root`` (the input's shape): the identity and routing
    ops between the input and the first layers (:attr:`Plan.input_path`, linear) run on ``x_root``.
    Returns ``{first layer's input node: value}``."""
    local = dict(env)
    local[plan.input] = x_root
    for n in plan.nodes:
        if n in plan.input_path and n is not plan.input:
            local[n] = n.target(*resolve(n.args, local), **resolve(n.kwargs, local))
    return {
        layer.input: local[layer.input]
        for layer in plan.layers.values()
        if layer.is_first and layer.input in plan.input_path
    }


def propagate(plan, env, n, r, override=None, root=None):
    """Relevance that node ``n`` sends to each of its activation inputs, given ``r`` at its output.

    Returns ``{input node: (relevance, factor)}`` where ``relevance = input * factor`` for linear ops (the
    factor feeds the hypothetical scores) and ``factor`` is ``None`` for pass-through and routing ops.
    override: ``{input node: masked activation}`` to recompute with (PLRP-M). root: ``{first layer's input
    node: its value at the root point}`` (:func:`root_inputs`): those layers take their rule against it.
    """
    override = override or {}
    if n in plan.layers:
        layer = plan.layers[n]
        a = override.get(layer.input, env[layer.input])
        z = None if layer.input in override else env[n]
        at = root.get(layer.input) if root and layer.is_first else None
        factor = _layer_factor(layer, a, r, z, at)
        return {layer.input: (a * factor, factor)}
    acts = [a for a in dict.fromkeys(nodes_in((n.args, n.kwargs))) if a in plan.activations]
    return plan.rules[n].relevance(n, env, acts, r, override, plan.input_path)


def backward(plan, env, initial, method="lrp", return_layers=False, root=None):
    """Walk the graph backwards from ``initial`` (output node -> initial relevance).

    method: ``lrp``, ``plrp-lambda`` or ``plrp-m``. Pruning acts on the total relevance of every hidden
    representation that feeds a linear layer (not the first), once all of its consumers have sent theirs:
    the pruned set follows the mass quantiles of that total. PLRP-M recomputes what each linear layer sends
    with the pruned neurons removed; what other consumers send (a residual skip, say) has no weights to
    flow through, so its kept entries are rescaled per sign as in PLRP-λ.
    Returns ``(relevance, hypothetical, layers)``: relevance and hypothetical scores at the input
    (input's shape), and ``{layer name: relevance at the layer's input after pruning}`` when asked.
    ``root``: the first layers' inputs at the root point (:func:`root_inputs`), or None (against zero).
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
        if packet(n) is operator.getitem:
            parent, i = n.args
            slot = relevance.setdefault(parent, [None] * len(env[parent]))
            slot[i] = r if slot[i] is None else slot[i] + r
            if c_out is not None:
                cslot = factors.setdefault(parent, [None] * len(env[parent]))
                cslot[i] = c_out if cslot[i] is None else cslot[i] + c_out
            continue
        for a, (r_a, factor) in propagate(plan, env, n, r, root=root).items():
            add(relevance, a, r_a)
            if method == "plrp-m" and a in pruned_at:
                sent.setdefault(a, []).append((n, r, r_a))
            if a in plan.input_path:
                if factor is None and c_out is not None:  # identity/routing: the factor follows
                    factor = plan.rules[n].factor_through(n, env, a, c_out)
                if factor is not None:
                    add(factors, a, factor)
    x = env[plan.input]
    r_x = relevance.get(plan.input, torch.zeros_like(x))
    c_x = factors.get(plan.input, torch.zeros_like(x))
    if return_layers and plan.input in pruned_at:
        layers[pruned_at[plan.input].name] = r_x.detach()
    return r_x, c_x, layers
