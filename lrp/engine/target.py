"""Targets: which scalar ``f_t(x)`` per sequence is explained, and its initial relevance.

A target is a mapping ``{"output": name | int | None, "index": int | None, "reduction": ...}``:

- ``output``: for models with several outputs (tuple or dict), which one (dict key or position).
- ``index``: the task/class along dimension 1 (``(N, T)`` logits, or ``(N, T, L)`` profiles).
- ``reduction``: ``none`` (the selected entry itself), ``sum`` (all entries of the output), or ``profile``
  (BPNet-style profile logits ``z``, ``(N, L)``, or ``(N, S, L)`` with strands/tasks ``S``): with
  ``m = z - mean(z)`` over the positions (and, without ``index``, the strands too, as bpnet-lite's
  ``ProfileWrapper`` flattens them), ``f = sum(softmax(m).detach() * m)`` (bpnet-lite, chrombpnet; the
  DeepLIFT paper's adjustment for softmax). With ``index`` only that task's ``(N, L)`` logits are reduced.

The initial relevance has the output's shape, holds ``f_t(x)`` spread over the entries that make it, and is
zero elsewhere; its sum per sequence is ``f_t(x)``. For ``profile``, ``f`` is linear in ``z`` with the
softmax detached, ``f = sum_j (p_j - 1/n) z_j`` with ``p = softmax(m)`` over the ``n`` reduced entries, and
entry ``j`` holds ``(p_j - 1/n) z_j``: the epsilon rule's split through the centring ``m = z - mean(z)``
(gradient times logit), so LRP and gradient x input start from the same relevance at the logits.
"""

import torch

from lrp.core.errors import PlrpError

REDUCTIONS = ("none", "sum", "profile")
#: reductions whose explained scalar is a signed sum over the output's entries (entry relevance of both signs)
SIGNED = ("profile",)


def is_signed(target):
    """Whether the target spreads relevance of both signs over the output's entries at the start of the
    walk (``reduction: profile``: ``(p_j - 1/n) z_j`` is negative wherever ``p_j < 1/n`` or ``z_j < 0``),
    which picks the default composite's hidden-convolution rule (:func:`lrp.engine.rules.composite`)."""
    return normalize_target(target)["reduction"] in SIGNED


def normalize_target(target):
    """Accept ``None``, an int (the index), or a mapping; return the full mapping."""
    if target is None:
        target = {}
    elif isinstance(target, int):
        target = {"index": target}
    target = dict(target)
    unknown = set(target) - {"output", "index", "reduction"}
    if unknown:
        raise PlrpError(
            f"target: unknown key(s) {', '.join(sorted(unknown))}. Fix: use output, index, reduction"
        )
    target.setdefault("output", None)
    target.setdefault("index", None)
    target.setdefault("reduction", "none")
    if target["reduction"] not in REDUCTIONS:
        raise PlrpError(
            f"target.reduction: {target['reduction']!r} is not one of {', '.join(REDUCTIONS)}"
        )
    return target


def select_output(outputs, names, target):
    """Pick the explained output tensor. outputs: list of tensors; names: their keys (str or int)."""
    which = target["output"]
    if which is None:
        if len(outputs) > 1:
            raise PlrpError(
                f"the model has {len(outputs)} outputs ({', '.join(map(str, names))}). "
                "Fix: set target.output to one of them"
            )
        return 0
    if which in names:
        return names.index(which)
    if isinstance(which, int) and 0 <= which < len(outputs):
        return which
    raise PlrpError(
        f"target.output {which!r} is not an output of the model. Fix: choose one of "
        f"{', '.join(map(str, names))}"
    )


def initial_relevance(output, target):
    """Return ``(R, f)``: the initial relevance (output's shape) and ``f_t(x)`` of shape (N,)."""
    index, reduction = target["index"], target["reduction"]
    out = output if output.dim() > 1 else output[:, None]
    if index is not None:
        if not 0 <= index < out.shape[1]:
            raise PlrpError(
                f"target.index {index} is out of range: the output has {out.shape[1]} tasks along "
                f"dimension 1 (shape {tuple(output.shape)}). Fix: use an index in 0..{out.shape[1] - 1}"
            )
        keep = torch.zeros_like(out, dtype=torch.bool)
        keep[:, index] = True
    else:
        keep = torch.ones_like(out, dtype=torch.bool)
    if reduction == "none":
        if int(keep[0].sum()) != 1:
            raise PlrpError(
                f"the target output has shape {tuple(output.shape)}, not one value per sequence. "
                "Fix: set target.index, or target.reduction to sum or profile"
            )
        relevance = torch.where(keep, out, 0)
    elif reduction == "sum":
        relevance = torch.where(keep, out, 0)
    else:
        logits, put = _profile_logits(out, index, output.shape)
        relevance = put(_profile_weights(logits) * logits)
    f = relevance.flatten(1).sum(1)
    return relevance.reshape(output.shape), f


def target_scalar(output, target):
    """``f_t(x)`` (N,) with autograd intact (for gradient x input and DeepLIFT)."""
    index, reduction = target["index"], target["reduction"]
    out = output if output.dim() > 1 else output[:, None]
    if reduction == "profile":
        logits, _ = _profile_logits(out, index, output.shape)
        m = logits - logits.mean(1, keepdim=True)
        return (torch.softmax(m, dim=1).detach() * m).sum(1)
    if index is not None:
        out = out[:, index]
    return out.flatten(1).sum(1) if out.dim() > 1 else out


def _profile_logits(out, index, shape):
    """The reduced logits ``(N, n)`` of a profile target and a function putting ``(N, n)`` values back
    into a zero tensor of the output's shape ``shape``.

    ``out`` is the output with at least 2 dimensions: ``(N, L)`` or ``(N, S, L)``; with ``index`` on a
    3-d output only task ``index``'s positions are reduced, otherwise every entry (strands and positions).
    """
    if index is not None and out.dim() == 3:
        logits = out[:, index]

        def put(values):
            full = torch.zeros_like(out)
            full[:, index] = values
            return full.reshape(shape)

        return logits, put
    if index is not None:
        raise PlrpError(
            f"target.index {index} with reduction profile needs a profile output of shape (N, tasks, "
            f"L), not {tuple(shape)}. Fix: remove target.index"
        )
    return out.flatten(1), lambda values: values.reshape(shape)


def _profile_weights(logits):
    """``softmax(m) - 1/n`` ``(N, n)`` of the mean-normalised logits ``m = z - mean(z)``: the gradient of
    the profile target at the logits ``z`` ``(N, n)``, the softmax held constant."""
    m = logits - logits.mean(1, keepdim=True)
    return torch.softmax(m, dim=1) - 1.0 / logits.shape[1]
