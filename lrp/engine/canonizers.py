"""Canonizers: rewrites of a :class:`lrp.engine.graph.Plan` into an equivalent form the LRP rules suit
better, applied after the layers are found and before their rules are picked (so before the walk).

- :class:`MergeBatchNorm`: an eval-mode BatchNorm right after a linear layer (its only consumer) is folded
  into that layer's weight and bias, so the layer's rule sees ``z = W' a + b'`` of the pair.
"""

import torch

from lrp.engine.ops import BATCHNORM_OPS, packet

aten = torch.ops.aten


class MergeBatchNorm:
    """Fold every BatchNorm that directly and solely follows a linear layer into it.

    The layer's ``out`` becomes the BatchNorm's output node, its weight and bias become copies scaled by
    ``gamma / sqrt(var + eps)`` and shifted by ``beta - mean * scale``; the layer and BatchNorm nodes in
    between join ``plan.absorbed`` (the walk skips them). The program is not changed.
    """

    def apply(self, plan):
        """Rewrite ``plan`` in place and return it."""
        for layer in list(plan.layers.values()):
            users = [u for u in layer.node.users if u in plan.live]
            if len(users) != 1 or packet(users[0]) not in BATCHNORM_OPS:
                continue
            bn = out = users[0]
            if bn.args[0] is not layer.node:
                continue
            if packet(bn) is aten._native_batch_norm_legit_no_training:
                gets = [u for u in bn.users if u in plan.live]  # (output, mean, rstd)[0]
                if len(gets) != 1 or gets[0].args[1] != 0:
                    continue
                out = gets[0]
            layer.weight, layer.bias = fold_batchnorm(layer.weight, layer.bias, bn, plan.consts)
            del plan.layers[layer.node]
            plan.absorbed.update({layer.node, bn} - {out})
            layer.out = out
            plan.layers[out] = layer
        return plan


def fold_batchnorm(weight, bias, bn, consts):
    """The weight and bias of a linear layer followed by the eval-mode BatchNorm node ``bn``.

    Parameters
    ----------
    weight : torch.Tensor
        (C_out, ...) the layer's weight.
    bias : torch.Tensor or None
        (C_out,) the layer's bias.
    bn : torch.fx.Node
        An ``aten.batch_norm`` or ``aten._native_batch_norm_legit_no_training`` node.
    consts : dict
        node -> constant tensor (the BatchNorm's statistics and affine parameters).

    Returns
    -------
    tuple of torch.Tensor
        New ``(weight, bias)``; the inputs are not changed.
    """
    a = list(bn.args) + [None] * 9
    if packet(bn) is aten.batch_norm:
        gamma, beta, mean, var, eps = a[1], a[2], a[3], a[4], a[7]
    else:
        gamma, beta, mean, var, eps = a[1], a[2], a[3], a[4], a[6]
    mean, var = consts[mean], consts[var]
    gamma = consts[gamma] if gamma is not None else torch.ones_like(mean)
    beta = consts[beta] if beta is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + eps)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    b = bias if bias is not None else torch.zeros_like(mean)
    return weight * scale.reshape(shape), (b - mean) * scale + beta
