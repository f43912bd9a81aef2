"""Data-driven choices of the LRP composite and of PLRP's pruned share ``p``, from the model and the
windows alone (no known sites): ``rules: auto`` and ``p_pos: auto`` *(ours, a prototype)*.

``rules: auto`` (:func:`choose_rules`): explain a seeded sample of the windows with each candidate
composite and keep the one whose relevance best passes the *deletion test*: deleting the positions in
order of relevance must lower ``f_t`` faster than deleting them in random order. The test itself is the
caller's (``judge``; the evaluation layer owns it as :func:`lrp.evaluation.metrics.faithfulness`), so this
module stays in the engine layer.

``p_pos: auto`` (:func:`knee_p`): per hidden layer, the share of positive relevance mass held by the
entries below the layer's mean positive entry, measured on plain LRP of a seeded sample and taken as the
median over windows. On the Lorenz curve of a layer's relevance (mass share against entry share, smallest
first) this is the point farthest below the diagonal: pruning there removes the most entries for the least
mass. Flat relevance gives ``p`` near 0 (nothing to prune), relevance concentrated in a few neurons a large
``p``; it lands in ``[0, 1)`` by construction. :func:`knee_p` returns a ``p_layers`` mapping.
"""

import logging

import numpy as np
import torch

from lrp.engine.explain import explain
from lrp.engine.methods import AUTO, auto_keys

log = logging.getLogger("plrp")

#: the candidate composites of ``rules: auto``: name -> ``rules`` config (None: the default composite)
CANDIDATES = {
    "default": None,
    "conv-epsilon": {"conv": "epsilon"},
    "conv-gamma": {"conv": {"rule": "gamma", "gamma": 0.25}},
}


def sample(x, n, seed=0):
    """A seeded sample of at most ``n`` windows of ``x (N, C, L)`` -> ``(min(n, N), C, L)``, in order."""
    x = torch.as_tensor(x)
    if x.shape[0] <= n:
        return x
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(x.shape[0], size=n, replace=False))]


def choose_rules(
    model, x, target, judge, method="lrp", candidates=None, n=64, seed=0, **explain_kwargs
):
    """``rules: auto``: the candidate composite whose relevance passes the deletion test best.

    Parameters
    ----------
    model : torch.nn.Module or torch.export.ExportedProgram
        The model.
    x : torch.Tensor
        (N, C, L) one-hot windows; a seeded sample of ``n`` is explained.
    target : None, int or dict
        The explained scalar (see :mod:`lrp.engine.target`).
    judge : callable
        ``judge(x (n, C, L) numpy, scores (n, L) numpy) -> float``, higher is better: the deletion gain
        (area over the most-relevant-first deletion curve minus random order's), in units of ``f_t``.
    method : str
        An LRP-family method (``lrp``, ``plrp-lambda``, ``plrp-m``).
    candidates : dict, optional
        ``{name: rules config}``; default :data:`CANDIDATES`.
    n, seed : int
        Sample size and its seed.
    **explain_kwargs
        Passed to :func:`lrp.engine.explain.explain` (``p_pos``, ``device``, ...).

    Returns
    -------
    dict
        ``choice`` (name), ``rules`` (its config), ``scores`` ``{name: judge value}``.
    """
    candidates = CANDIDATES if candidates is None else candidates
    xs = sample(x, n, seed)
    scores = {}
    for name, rules in candidates.items():
        out = explain(model, xs, method=method, target=target, rules=rules, **explain_kwargs)
        scores[name] = float(judge(xs.numpy(), out.relevance.sum(1).numpy()))
    choice = max(scores, key=lambda k: (scores[k], -list(candidates).index(k)))
    return {"choice": choice, "rules": candidates[choice], "scores": scores}


def knee_share(relevance):
    """Per row, the share of positive mass held by entries below the row's mean positive entry.

    Parameters
    ----------
    relevance : torch.Tensor
        (N, ...) relevance at one layer's input.

    Returns
    -------
    numpy.ndarray
        (N,) float64 in ``[0, 1)``; 0 for a row without positive relevance.
    """
    r = torch.as_tensor(relevance).flatten(1).double().clamp(min=0)
    n_pos = (r > 0).sum(1).clamp(min=1)
    total = r.sum(1)
    mean = total / n_pos
    below = torch.where((r > 0) & (r < mean[:, None]), r, 0).sum(1)
    share = torch.where(total > 0, below / total.clamp(min=1e-300), 0)
    return share.numpy()


def knee_p(model, x, target, n=64, seed=0, rules=None, **explain_kwargs):
    """``p_pos: auto``: per hidden layer, the median :func:`knee_share` of plain LRP over a sample.

    Parameters
    ----------
    model, x, target :
        As for :func:`choose_rules`.
    n, seed : int
        Sample size and its seed (the result is a function of the model, the windows and the seed).
    rules : dict, optional
        The composite the pruned method will use.
    **explain_kwargs
        Passed to :func:`lrp.engine.explain.explain`.

    Returns
    -------
    dict
        ``{layer name: p_pos}`` with every ``p_pos`` in ``[0, 1)``, for ``p_layers``; the first layer (the
        one reading the sequence, never pruned) is left out.
    """
    xs = sample(x, n, seed)
    out = explain(
        model, xs, method="lrp", target=target, rules=rules, return_layers=True, **explain_kwargs
    )
    return {
        name: round(float(np.median(knee_share(r))), 4)
        for name, r in out.layers.items()
        if r.shape != xs.shape  # a layer reading the sequence itself is never pruned
    }


def resolve(model, x, target, method, params, judge, n=64, seed=0, **explain_kwargs):
    """Replace a method's ``rules: auto`` and ``p_pos: auto`` by their data-driven choices.

    ``rules: auto`` is chosen first (:func:`choose_rules`, with ``p`` as given, or none while ``p`` is
    chosen too); ``p_pos: auto`` then becomes ``p_pos = p_neg = 0`` plus :func:`knee_p`'s per-layer
    ``p_layers`` under the chosen composite (layers the user's own ``p_layers`` match keep the user's p).

    Parameters
    ----------
    model, x, target :
        As for :func:`choose_rules`; ``x`` (N, C, L) in the model's channel order.
    method : str
        The method's name.
    params : dict
        Its checked parameters (:func:`lrp.engine.methods.check_params`).
    judge : callable
        As for :func:`choose_rules`.
    n, seed : int
        Windows sampled for the choices and the sample's seed: the result is a function of the model,
        the windows and the seed.
    **explain_kwargs
        Passed to :func:`lrp.engine.explain.explain` (``device``, ``batch_size``).

    Returns
    -------
    resolved : dict
        ``params`` with no ``"auto"`` left.
    record : dict
        What was chosen and why: ``rules`` (``choice``, ``rules``, ``scores``) and/or ``p_layers``
        (``{layer: p_pos}``), and ``n_windows``, ``seed``.
    """
    keys = auto_keys(params)
    resolved = dict(params)
    record = {"method": method, "auto": list(keys), "n_windows": int(min(n, len(x))), "seed": seed}
    fixed_p = {}
    if "p_pos" not in keys and "p_pos" in params:
        fixed_p = {k: params[k] for k in ("p_pos", "p_neg", "p_layers")}
    if "rules" in keys:
        by = "lrp" if "p_pos" in keys else method  # p not chosen yet: judge the composite unpruned
        chosen = choose_rules(
            model, x, target, judge, by, n=n, seed=seed, **fixed_p, **explain_kwargs
        )
        resolved["rules"] = chosen["rules"]
        record["rules"] = chosen
        log.info(
            "rules: auto for %s chose %s (deletion gain %s)",
            method,
            chosen["choice"],
            ", ".join(f"{k} {v:.4g}" for k, v in chosen["scores"].items()),
        )
    if "p_pos" in keys:
        knee = knee_p(
            model, x, target, n=n, seed=seed, rules=resolved.get("rules"), **explain_kwargs
        )
        user = dict(params.get("p_layers") or {})
        resolved.update(
            p_pos=0.0,
            p_neg=0.0,
            p_layers={**user, **{k: v for k, v in knee.items() if k not in user}},
        )
        record["p_layers"] = knee
        log.info("p_pos: auto for %s chose %s", method, knee)
    assert AUTO not in (resolved.get("rules"), resolved.get("p_pos"))
    return resolved, record
