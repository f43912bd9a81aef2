"""A model as a scoring function of ACGT one-hot windows: the channel permutation at the model boundary and
the explained scalar ``f_t(x)``.

One-hot sequences are ``(N, 4, L)`` in ACGT order everywhere in plrp; a model whose input alphabet differs
(config ``alphabet``) is fed ``x[:, alphabet_order(alphabet)]``. ``plrp attribute`` and ``plrp evaluate``
(faithfulness) both go through here. Cheap to import: torch is imported by :func:`target_function`.
"""

import numpy as np

from lrp.core.errors import PlrpError

BASES = "ACGT"


def alphabet_order(alphabet):
    """Channel indices that turn ACGT one-hot into the model's alphabet order.

    Parameters
    ----------
    alphabet : str
        The model's channel order, a permutation of ``ACGT`` (any case).

    Returns
    -------
    list of int
        ``order`` with ``x_model = x[:, order]`` for ``x (N, 4, L)`` in ACGT order; ``np.argsort(order)``
        turns model-order channels back into ACGT.
    """
    upper = str(alphabet).upper()
    if sorted(upper) != sorted(BASES):
        raise PlrpError(
            f"alphabet {alphabet!r} is not an order of A, C, G, T. Fix: e.g. alphabet: ACGT"
        )
    return [BASES.index(b) for b in upper]


def flatten_outputs(outputs):
    """A model's outputs (a tensor, a tuple/list or a dict of tensors) -> ``(list of tensors, names)``."""
    if isinstance(outputs, dict):
        return list(outputs.values()), list(outputs.keys())
    if isinstance(outputs, (tuple, list)):
        return list(outputs), list(range(len(outputs)))
    return [outputs], [0]


def target_function(model, target=None, alphabet=BASES, batch_size=128):
    """The explained scalar of a loaded model as a numpy function of ACGT one-hot windows.

    Parameters
    ----------
    model : torch.nn.Module or torch.export.ExportedProgram
        As :func:`lrp.engine.model_io.load_model` returns it.
    target : dict or None
        The target (see :mod:`lrp.engine.target`); None is the default target.
    alphabet : str
        The model's channel order (see :func:`alphabet_order`).
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    callable
        ``f(x)`` with ``x (n, 4, L)`` (float, ACGT order; an array or anything indexable by row ranges)
        -> ``(n,)`` float64: ``f_t(x)`` computed without gradients.
    """
    import torch

    from lrp.engine.model_io import model_outputs
    from lrp.engine.target import normalize_target, select_output, target_scalar

    target = normalize_target(target)
    order = alphabet_order(alphabet)
    if isinstance(model, torch.nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model = model.eval()

    def f(x):
        out = []
        with torch.no_grad():
            for b in range(0, len(x), batch_size):
                xb = torch.as_tensor(np.asarray(x[b : b + batch_size], dtype=np.float32)[:, order])
                outputs, names = flatten_outputs(model_outputs(model, xb))
                scalar = target_scalar(outputs[select_output(outputs, names, target)], target)
                out.append(scalar.reshape(-1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    return f
