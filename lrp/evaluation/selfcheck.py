"""The self-check of an explanation *(ours, a prototype)*: is it better than random?

Two tests, each against its own random baseline:

- **Deletion** (needs no known sites): delete positions most-relevant-first and in random order (the same
  background, :func:`lrp.evaluation.metrics.perturbation_curve`); per window the area over each curve
  (AOPC, in units of ``f_t``). The gain is relevance order's AOPC minus random order's; its mean over
  windows with a 95% interval (normal approximation, paired per window).
- **Sites** (where known): pooled per-position AUPRC against the mask, against the share of site
  positions (what a random score gets).

A test is ``worse`` when its interval lies below random (AUPRC: below the random share), ``no-better``
when it includes random (AUPRC: below 1.5 times the random share), ``better`` otherwise. A method that is
not ``better`` on some test is flagged with the likely cause and the fix (:func:`advice`): an explanation
that ranks positions no better than chance is as useless as one that ranks them worse.

:func:`selfcheck` runs both tests on arrays (the benchmark); :func:`check_store` runs them on a
method's gathered relevance as ``plrp evaluate`` does, and :func:`fields` gives its columns of
``metrics.tsv`` and ``comparison.tsv/json``.
"""

import numpy as np

from lrp.evaluation.metrics import _background, auprc, evenly_spaced, perturbation_curve

# torch (lrp.engine.target) and numba (lrp.motifs.seqlets) are imported where used: `plrp evaluate --help`
# and `plrp evaluate --compare` read this module's defaults without either

#: the z of the two-sided 95% normal interval
Z95 = 1.96


def deletion_gain(f, x, scores, n_steps=10, max_fraction=0.2, n_random=2, seed=0):
    """Per-window deletion gain of ``scores`` over random order.

    Parameters
    ----------
    f : callable
        ``(n, 4, L) float32 -> (n,)``, the explained scalar.
    x : numpy.ndarray
        (N, 4, L) one-hot windows.
    scores : numpy.ndarray
        (N, L) projected relevance.
    n_steps, max_fraction : int, float
        Up to ``max_fraction`` of the positions are deleted in ``n_steps`` steps.
    n_random : int
        Random orders averaged for the baseline.
    seed : int
        Seeds the background (shuffled columns) and the random orders.

    Returns
    -------
    numpy.ndarray
        (N,) float64: AOPC of relevance order minus mean AOPC of the random orders, in units of ``f``.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    N, _, L = x.shape
    fractions = np.linspace(0, max_fraction, n_steps + 1)
    bg = _background(x, "shuffle", rng)
    # f of the intact windows (the curves' first point, the same for every order) is computed once
    order = np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")
    curve = perturbation_curve(f, x, order, fractions, bg)
    f0 = curve[:, :1]

    def aopc(order):
        return (f0 - perturbation_curve(f, x, order, fractions[1:], bg)).mean(1)

    relevance = (f0 - curve[:, 1:]).mean(1)
    random = np.mean([aopc(np.argsort(rng.random((N, L)), axis=1)) for _ in range(n_random)], 0)
    return relevance - random


def _verdict(low, high, random=0.0):
    if high < random:
        return "worse"
    if low <= random:
        return "no-better"
    return "better"


def deletion_test(f, x, scores, seed=0, **deletion):
    """The deletion test of :func:`deletion_gain`: its mean over windows with a 95% interval.

    Parameters
    ----------
    f, x, scores, seed, **deletion
        As for :func:`deletion_gain`.

    Returns
    -------
    dict
        ``gain`` (mean, in units of ``f``), ``low``, ``high`` (95% interval, paired per window),
        ``n_windows`` and ``verdict`` (``worse``, ``no-better`` or ``better``).
    """
    gain = deletion_gain(f, x, scores, seed=seed, **deletion)
    gain = gain[np.isfinite(gain)]
    mean = float(gain.mean()) if gain.size else float("nan")
    se = float(gain.std(ddof=1) / np.sqrt(gain.size)) if gain.size > 1 else float("inf")
    low, high = mean - Z95 * se, mean + Z95 * se
    return {
        "gain": mean,
        "low": low,
        "high": high,
        "n_windows": int(gain.size),
        "verdict": _verdict(low, high),
    }


def sites_test(auprc_value, random):
    """The sites test: pooled per-position AUPRC against ``random`` (the share of site positions).

    Returns
    -------
    dict
        ``auprc``, ``random``, ``ratio`` and ``verdict``: ``worse`` below random, ``no-better`` below
        1.5 times random, else ``better``.
    """
    a, base = float(auprc_value), float(random)
    verdict = "worse" if a < base else "no-better" if a < 1.5 * base else "better"
    return {"auprc": a, "random": base, "ratio": a / base, "verdict": verdict}


def judge(tests, method=None, rules=None, target=None):
    """Flag and message of a method from its tests (``{"deletion": ..., "sites": ...}``, either absent).

    Returns
    -------
    dict
        ``tests`` with ``flagged`` (a test is not ``better``) and ``message`` (:func:`advice`; empty when
        nothing is flagged).
    """
    failed = {k: t["verdict"] for k, t in tests.items() if t is not None}
    failed = {k: v for k, v in failed.items() if v != "better"}
    out = {k: t for k, t in tests.items() if t is not None}
    out["flagged"] = bool(failed)
    out["message"] = advice(failed, method, rules, target) if failed else ""
    return out


def selfcheck(f, x, scores, mask=None, method=None, rules=None, target=None, seed=0, **deletion):
    """Check one method's explanation against random, by deletion and, with ``mask``, by AUPRC.

    Parameters
    ----------
    f : callable
        ``(n, 4, L) float32 -> (n,)``, the explained scalar.
    x : numpy.ndarray
        (N, 4, L) one-hot windows.
    scores : numpy.ndarray
        (N, L) projected relevance ``R.sum(1)``.
    mask : numpy.ndarray, optional
        (N, L) bool known sites.
    method, rules, target :
        The method's name, its composite and the target, to name the likely cause.
    seed : int
        Seeds the deletion test.
    **deletion
        Passed to :func:`deletion_gain`.

    Returns
    -------
    dict
        ``deletion`` (:func:`deletion_test`), ``sites`` (:func:`sites_test`, with a mask holding a site),
        ``flagged`` and ``message`` (:func:`judge`).
    """
    tests = {"deletion": deletion_test(f, x, scores, seed=seed, **deletion)}
    if mask is not None and np.asarray(mask).any():
        mask = np.asarray(mask, dtype=bool)
        tests["sites"] = sites_test(auprc(scores, mask), mask.mean())
    return judge(tests, method, rules, target)


def check_store(
    store,
    scalars,
    f=None,
    method=None,
    rules=None,
    target=None,
    max_windows=128,
    seed=0,
    **deletion,
):
    """The self-check of one method's gathered relevance, as ``plrp evaluate`` runs it.

    Parameters
    ----------
    store : lrp.genomics.store.RelevanceStore
        The method's relevance (``relevance`` and ``ohe``).
    scalars : dict
        The method's metrics (:func:`lrp.evaluation.evaluate.evaluate_method`): ``auprc``,
        ``auprc_random`` and ``n_windows_with_site`` give the sites test.
    f : callable, optional
        The model's ``f_t``; without it there is no deletion test.
    method, rules, target :
        As for :func:`selfcheck`.
    max_windows : int
        The deletion test runs on at most this many evenly spaced windows.
    seed : int
        Seeds the deletion test.
    **deletion
        Passed to :func:`deletion_gain`.

    Returns
    -------
    dict
        As :func:`selfcheck` (``deletion`` absent without ``f``, ``sites`` without a site).
    """
    tests = {}
    if f is not None:
        from lrp.motifs.seqlets import project

        rows = evenly_spaced(len(store), max_windows)
        x = np.asarray(store.ohe[rows], dtype=np.float32)
        scores = project(store.relevance[rows])
        tests["deletion"] = deletion_test(f, x, scores, seed=seed, **deletion)
    if scalars.get("n_windows_with_site"):
        tests["sites"] = sites_test(scalars["auprc"], scalars["auprc_random"])
    return judge(tests, method, rules, target)


def fields(check):
    """The self-check's columns of ``metrics.tsv`` and ``comparison.tsv/json``: ``selfcheck_flag`` (bool),
    ``selfcheck_message`` (str), ``selfcheck_deletion_gain`` and ``selfcheck_auprc_ratio`` (float, NaN
    where the test did not run)."""
    nan = float("nan")
    return {
        "selfcheck_flag": bool(check["flagged"]),
        "selfcheck_message": check["message"],
        "selfcheck_deletion_gain": check["deletion"]["gain"] if "deletion" in check else nan,
        "selfcheck_auprc_ratio": check["sites"]["ratio"] if "sites" in check else nan,
    }


def advice(failed, method=None, rules=None, target=None):
    """One line naming the failed tests, the likely cause and the fix.

    ``failed``: ``{test: verdict}`` of the tests not judged ``better`` (``deletion``, ``sites``; verdicts
    ``worse`` or ``no-better``), or a list of test names (taken as ``worse``); ``method``, ``rules``,
    ``target``: as for :func:`selfcheck`.
    """
    from lrp.engine.target import is_signed

    if not isinstance(failed, dict):
        failed = dict.fromkeys(failed, "worse")
    label = {"deletion": "deleting its top positions", "sites": "its AUPRC on known sites"}
    what = "; ".join(
        f"{label[k]}: {'worse than' if v == 'worse' else 'no better than'} random"
        for k, v in failed.items()
    )
    head = f"{method or 'the explanation'} is not better than random ({what})"
    reduction = (target or {}).get("reduction") if isinstance(target, dict) else None
    lrp_family = method in ("lrp", "plrp-lambda", "plrp-m")
    default_conv = "epsilon" if is_signed(target) else "zplus"  # lrp.engine.rules.composite
    conv = (
        (rules or {}).get("conv", default_conv)
        if isinstance(rules, dict) or rules is None
        else None
    )
    if lrp_family and conv == "zplus":
        cause = (
            "z-plus on hidden convolutions keeps only positive contributions, which misranks a signed "
            "target" + (" (the profile head)" if reduction == "profile" else "")
        )
        fix = "set rules: {conv: epsilon} or rules: auto"
    elif lrp_family:
        cause = "the composite does not suit this model and target"
        fix = "set rules: auto, or compare with gradient-x-input"
    else:
        cause = "the target may not be the output the model was trained on"
        fix = "check target (output, index, reduction) and the model's alphabet"
    return f"{head}: likely cause: {cause}. Fix: {fix}"
