"""The aten ops plrp knows, by what relevance does at them, and small helpers on fx nodes.

The op kinds (each op of an exported graph is of one kind, else :func:`lrp.engine.graph.plan` rejects it):

- :data:`LAYER_OPS`: linear layers with constant weights (Conv1d, Linear, addmm/mm/matmul);
- :data:`BATCHNORM_OPS`: eval-mode BatchNorm (merged into the layer before it by
  :mod:`lrp.engine.canonizers`, else explained as a parameter-free linear op);
- :data:`PASS_OPS`: element-wise activations and :data:`IDENTITY_OPS` (relevance passes unchanged);
- :data:`ROUTE_OPS`: ops that move entries around (relevance follows their vector-Jacobian product);
- :data:`LINEAR_OPS`: parameter-free linear ops (sums, scaling, means, average pools; the epsilon rule).
"""

import torch
from torch import fx

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
# element-wise activations and identities: relevance passes unchanged (exp: Koo & Ploenzke's first-layer
# activation; the first layer takes its rule against the root point, where its bias cancels)
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
    aten.exp,
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
# ops whose output is >= 0 whatever their input
NONNEG_OPS = {aten.relu, aten.relu6, aten.sigmoid, aten.softplus, aten.hardsigmoid}
# outputs >= 0 where every signal input is: routing (padding with zeros), sums, means, average pools
KEEP_SIGN_OPS = (IDENTITY_OPS | ROUTE_OPS | {aten.mean, aten.sum, aten.avg_pool1d}) - {
    aten.constant_pad_nd,
    aten.pad,
}


def packet(node):
    """The op of a ``call_function`` node without its overload (``aten.add`` for ``aten.add.Tensor``)."""
    target = node.target
    return getattr(target, "overloadpacket", target)


def nodes_in(value):
    """The fx nodes inside a (possibly nested) argument."""
    out = []
    fx.node.map_arg(value, out.append)
    return out


def tensor_valued(node):
    """Whether a node outputs tensors (not sizes or other symbolic scalars)."""
    val = node.meta.get("val")
    if val is None:
        return True
    if isinstance(val, (tuple, list)):
        return any(isinstance(v, torch.Tensor) for v in val)
    return isinstance(val, torch.Tensor)


def layer_name(node):
    """The module path of the node's layer (``rconvs.1``), else the node's name."""
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.values())[-1][0]
        for prefix in ("L__self___", "L['self']."):
            path = path.replace(prefix, "")
        return path or node.name
    return node.name


def resolve(value, env):
    """A node's argument with every fx node in it replaced by its value in ``env``."""
    return fx.node.map_arg(value, lambda n: env[n])


def node_vjp(node, env, inputs, grads_out, override=None):
    """Vector-Jacobian product of ``node`` w.r.t. its activation ``inputs``, given output cotangents.

    override: ``{node: tensor}`` values to use instead of ``env`` (PLRP-M's masked activations).
    """
    local = dict(env)
    local.update(override or {})
    leaves = {a: local[a].detach().requires_grad_() for a in inputs}
    local.update(leaves)
    with torch.enable_grad():
        out = node.target(*resolve(node.args, local), **resolve(node.kwargs, local))
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
