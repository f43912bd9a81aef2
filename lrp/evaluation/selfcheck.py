"""The self-check of an explanation *(ours, a prototype)*: is it better than random?

Two tests, each against its own random baseline:

- **Deletion** (needs no known sites): delete positions most-relevant-first and in random order (the same
  background, :func:`lrp.evaluation.metrics.perturbation_curve`); per window the area over each curve
  (AOPC, in units of ``f_t``). The gain is relevance order's AOPC minus random order's; its mean over
  windows with a 95% interval (normal approximation, paired per window). The random orders' part is the
  same for every method (:func:`deletion_baseline`): the workflow computes it once per genome and model,
  in the faithfulness baseline, and each method runs only its relevance-ordered curve.
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

from lrp.evaluation.metrics import (
    _background,
    auprc,
    deletion_order,
    evenly_spaced,
    perturbation_curve,
)

# torch (lrp.engine.target) and numba (lrp.motifs.seqlets) are imported where used: `plrp evaluate --help`
# and `plrp evaluate --compare` read this module's defaults without either

#: the z of the two-sided 95% normal interval
Z95 = 1.96


def deletion_baseline(f, x, n_steps=10, max_fraction=0.2, n_random=2, seed=0):
    """The part of :func:`deletion_gain` that is the same for every method: the random orders' AOPC.

    The background and the random orders come from ``default_rng(seed)`` in the order
    :func:`deletion_gain` draws them, so the numbers are those of computing them per method. ``f`` runs
    once on the intact windows and ``n_steps`` times per random order.

    Parameters
    ----------
    f : callable
        ``(n, 4, L) float32 -> (n,)``, the explained scalar.
    x : numpy.ndarray
        (N, 4, L) one-hot windows.
    n_steps, max_fraction : int, float
        Up to ``max_fraction`` of the positions are deleted in ``n_steps`` steps.
    n_random : int
        Random orders averaged.
    seed : int
        Seeds the background (shuffled columns) and the random orders.

    Returns
    -------
    dict
        ``fractions`` (n_steps + 1,), ``f0`` (N,) (``f`` of the intact windows), ``random_aopc`` (N,)
        (mean over the random orders of each window's AOPC, in units of ``f``) and the parameters
        (``n_steps``, ``max_fraction``, ``n_random``, ``seed``).
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    N, _, L = x.shape
    fractions = np.linspace(0, max_fraction, n_steps + 1)
    bg = _background(x, "shuffle", rng)
    intact = np.broadcast_to(np.arange(L), (N, L))  # any order: fraction 0 deletes nothing
    f0 = perturbation_curve(f, x, intact, fractions[:1], bg)

    def aopc(order):
        return (f0 - perturbation_curve(f, x, order, fractions[1:], bg)).mean(1)

    random = [aopc(np.argsort(rng.random((N, L)), axis=1)) for _ in range(n_random)]
    return {
        "fractions": fractions,
        "f0": f0[:, 0],
        "random_aopc": np.mean(random, 0),
        "n_steps": n_steps,
        "max_fraction": max_fraction,
        "n_random": n_random,
        "seed": seed,
    }


def deletion_gain_from_baseline(f, x, scores, baseline):
    """:func:`deletion_gain` given the shared :func:`deletion_baseline` of the windows ``x``: only the
    relevance-ordered curve runs (``n_steps`` model passes over ``x``).

    Parameters
    ----------
    f, x, scores :
        As for :func:`deletion_gain`; ``x`` (N, 4, L) the windows of ``baseline``.
    baseline : dict
        :func:`deletion_baseline` of ``x``.

    Returns
    -------
    numpy.ndarray
        (N,) float64, as :func:`deletion_gain`.
    """
    x = np.asarray(x, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float64)
    f0 = np.asarray(baseline["f0"], dtype=np.float64)[:, None]
    if f0.shape != (x.shape[0], 1) or scores.shape != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"baseline of {f0.shape[0]} windows, scores {scores.shape}, windows {x.shape}"
        )
    fractions = np.asarray(baseline["fractions"], dtype=np.float64)
    bg = _background(x, "shuffle", np.random.default_rng(baseline["seed"]))
    order = deletion_order(scores, baseline["seed"])
    relevance = (f0 - perturbation_curve(f, x, order, fractions[1:], bg)).mean(1)
    return relevance - np.asarray(baseline["random_aopc"], dtype=np.float64)


def deletion_gain(f, x, scores, seed=0, **deletion):
    """Per-window deletion gain of ``scores`` over random order.

    Parameters
    ----------
    f : callable
        ``(n, 4, L) float32 -> (n,)``, the explained scalar.
    x : numpy.ndarray
        (N, 4, L) one-hot windows.
    scores : numpy.ndarray
        (N, L) projected relevance.
    seed : int
        Seeds the background (shuffled columns) and the random orders.
    **deletion
        ``n_steps``, ``max_fraction``, ``n_random`` of :func:`deletion_baseline`.

    Returns
    -------
    numpy.ndarray
        (N,) float64: AOPC of relevance order minus mean AOPC of the random orders, in units of ``f``.
    """
    baseline = deletion_baseline(f, x, seed=seed, **deletion)
    return deletion_gain_from_baseline(f, x, scores, baseline)


def deletion_params(seed=0, **deletion):
    """The deletion test's parameters, ``deletion`` over the defaults of :func:`deletion_baseline`:
    ``{n_steps, max_fraction, n_random, seed}``."""
    import inspect

    defaults = {
        k: p.default
        for k, p in inspect.signature(deletion_baseline).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    unknown = set(deletion) - set(defaults)
    if unknown:
        raise TypeError(f"unknown deletion parameters {sorted(unknown)}")
    return {**defaults, **deletion, "seed": seed}


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
        :func:`deletion_summary` of the gain.
    """
    return deletion_summary(deletion_gain(f, x, scores, seed=seed, **deletion))


def deletion_summary(gain):
    """The mean of a per-window deletion gain ``(N,)`` with a 95% interval (paired per window).

    Returns
    -------
    dict
        ``gain`` (mean, in units of ``f``), ``low``, ``high`` (95% interval), ``n_windows`` (finite gains)
        and ``verdict`` (``worse``, ``no-better`` or ``better``).
    """
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


def judge(tests, method=None, rules=None, target=None, kind=None):
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
    out["message"] = advice(failed, method, rules, target, kind) if failed else ""
    return out


def selfcheck(
    f, x, scores, mask=None, method=None, rules=None, target=None, seed=0, kind=None, **deletion
):
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
    kind : str, optional
        The method's kind (``lrp``, ``plrp-lambda``, ...: :data:`lrp.engine.methods.METHODS`) when its name
        is not one, to name the likely cause.
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
    return judge(tests, method, rules, target, kind)


def check_store(
    store,
    scalars,
    f=None,
    method=None,
    rules=None,
    target=None,
    max_windows=128,
    seed=0,
    baseline=None,
    kind=None,
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
    method, rules, target, kind :
        As for :func:`selfcheck`.
    max_windows : int
        The deletion test runs on at most this many evenly spaced windows.
    seed : int
        Seeds the deletion test.
    baseline : dict, optional
        The shared random orders of the deletion test (:func:`deletion_baseline` of the same windows,
        with ``rows``, their region rows, and ``path``, its file: what
        :func:`lrp.evaluation.evaluate.read_faith_baseline` gives as ``selfcheck``); without it they are
        computed here.
    **deletion
        Passed to :func:`deletion_gain`.

    Returns
    -------
    dict
        As :func:`selfcheck` (``deletion`` absent without ``f``, ``sites`` without a site).

    Raises
    ------
    lrp.core.errors.PlrpError
        ``baseline`` holds other windows or was computed with other parameters.
    """
    tests = {}
    if f is not None:
        from lrp.motifs.seqlets import project

        rows = evenly_spaced(len(store), max_windows)
        x = np.asarray(store.ohe[rows], dtype=np.float32)
        scores = project(store.relevance[rows])
        if baseline is None:
            gain = deletion_gain(f, x, scores, seed=seed, **deletion)
        else:
            check_baseline(
                baseline, np.asarray(store.index)[rows], deletion_params(seed, **deletion)
            )
            gain = deletion_gain_from_baseline(f, x, scores, baseline)
        tests["deletion"] = deletion_summary(gain)
    if scalars.get("n_windows_with_site"):
        tests["sites"] = sites_test(scalars["auprc"], scalars["auprc_random"])
    return judge(tests, method, rules, target, kind)


def check_baseline(baseline, region_rows, params):
    """Raise PlrpError naming ``baseline["path"]`` and the fix unless the shared deletion baseline was
    computed on the windows at ``region_rows`` (``(N,)`` int) with ``params`` (:func:`deletion_params`)."""
    from lrp.core.errors import PlrpError

    path = baseline.get("path", "the self-check baseline")
    differ = [k for k, v in params.items() if baseline[k] != v]
    if not np.array_equal(baseline["rows"], region_rows):
        differ.append(f"windows ({len(baseline['rows'])} there, {len(region_rows)} here)")
    if differ:
        raise PlrpError(
            f"{path}: the self-check's random-order curves there differ from this run's in"
            f" {', '.join(differ)}. Fix: rerun plrp faithfulness-baseline with this run's --seed and"
            " --selfcheck-windows (or give no --faith-baseline)"
        )


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


def advice(failed, method=None, rules=None, target=None, kind=None):
    """One line naming the failed tests, the likely cause and the fix.

    ``failed``: ``{test: verdict}`` of the tests not judged ``better`` (``deletion``, ``sites``; verdicts
    ``worse`` or ``no-better``), or a list of test names (taken as ``worse``); ``method``, ``rules``,
    ``target``, ``kind``: as for :func:`selfcheck`.
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
    kind = kind or method
    lrp_family = kind in ("lrp", "plrp-lambda", "plrp-m")
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
    elif kind in ("plrp-lambda", "plrp-m"):
        cause = (
            "the pruning removes relevance the target needs (p too high for this model and target)"
        )
        fix = "lower p_pos, set p_pos: auto, or compare with lrp (no pruning)"
    elif lrp_family:
        cause = "the composite does not suit this model and target"
        fix = "set rules: auto, or compare with gradient-x-input"
    else:
        cause = "the target may not be the output the model was trained on"
        fix = "check target (output, index, reduction) and the model's alphabet"
    return f"{head}: likely cause: {cause}. Fix: {fix}"
