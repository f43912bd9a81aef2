"""What ``plrp evaluate`` spends: its start-up imports only what a run needs, and the self-check's deletion
test and the shared faithfulness baseline run the model once on the intact windows (issue 13)."""

import subprocess
import sys

import numpy as np

from lrp.evaluation import selfcheck
from lrp.evaluation.metrics import _background, faithfulness_baseline, perturbation_curve


def _imported(code, names):
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {names!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return [m for m in out.strip().split(",") if m]


def test_evaluate_help_imports_no_heavy_library():
    """``plrp evaluate --help`` builds its options from numpy-only modules (was 4 s of torch and numba)."""
    code = "from lrp.steps.cli import build_parser\nbuild_parser('evaluate')"
    assert _imported(code, ("torch", "numba", "pandas", "matplotlib")) == []


def test_evaluate_compare_needs_neither_torch_nor_numba():
    """``plrp evaluate --compare`` reads metrics.json files and plots: no model, no seqlets."""
    code = (
        "from lrp.steps.cli import build_parser\nbuild_parser('evaluate')\n"
        "import lrp.evaluation.evaluate, lrp.report.comparison"
    )
    assert _imported(code, ("torch", "numba")) == []


def _reference_gain(f, x, scores, n_steps, max_fraction, n_random, seed):
    """The deletion gain with every curve run from fraction 0, as the self-check defines it."""
    rng = np.random.default_rng(seed)
    N, _, L = x.shape
    fractions = np.linspace(0, max_fraction, n_steps + 1)
    bg = _background(x, "shuffle", rng)

    def aopc(order):
        curve = perturbation_curve(f, x, order, fractions, bg)
        return (curve[:, :1] - curve)[:, 1:].mean(1)

    rel = aopc(np.argsort(-scores, axis=1, kind="stable"))
    rnd = np.mean([aopc(np.argsort(rng.random((N, L)), axis=1)) for _ in range(n_random)], 0)
    return rel - rnd


def _counted_model(rng, n, length):
    """``n`` random one-hot windows ``(n, 4, length)``, the weights ``w (4, length)`` of a toy model
    ``f(x) = tanh(sum(x * w))`` and the list of batch sizes ``f`` is called with (its passes, counted)."""
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))].transpose(0, 2, 1)
    w = rng.normal(size=(4, length)).astype(np.float32)
    rows = []

    def f(xb):
        rows.append(len(xb))
        return np.tanh((np.asarray(xb) * w).sum((1, 2)))

    return x, w, f, rows


def test_deletion_gain_runs_the_intact_windows_once_and_gives_the_same_numbers():
    rng = np.random.default_rng(3)
    N, L = 12, 50
    x, w, f, rows = _counted_model(rng, N, L)

    scores = (x * w).sum(1).astype(np.float64) + rng.normal(scale=0.5, size=(N, L))
    kw = {"n_steps": 5, "max_fraction": 0.3, "n_random": 3, "seed": 7}
    gain = selfcheck.deletion_gain(f, x, scores, **kw)
    calls = sum(rows)
    rows.clear()
    np.testing.assert_array_equal(gain, _reference_gain(f, x, scores, **kw))
    # 1 intact pass + 4 orders x 5 deletion steps, against 4 x 6 passes when each order redid the intact
    assert calls == N * (1 + 4 * 5) and sum(rows) == N * 4 * 6
    assert np.isfinite(gain).all() and gain.mean() > 0  # the relevance ranks better than random


def test_faithfulness_baseline_runs_the_intact_windows_once_and_gives_the_same_numbers():
    rng = np.random.default_rng(4)
    N, L = 10, 40
    x, _, f, rows = _counted_model(rng, N, L)

    base = faithfulness_baseline(f, x, n_steps=5, max_fraction=0.3, n_random=3, seed=7)
    assert sum(rows) == N * (1 + 3 * 5)  # against 3 x 6 passes when each order redid the intact
    reference = np.random.default_rng(7)  # each order's curve run from fraction 0
    bg = _background(x, "uniform", reference)
    curves = [
        perturbation_curve(
            f, x, np.argsort(reference.random((N, L)), axis=1), base["fractions"], bg
        )
        for _ in range(3)
    ]
    np.testing.assert_array_equal(base["f0"], curves[0][:, 0])
    np.testing.assert_array_equal(base["random_drop"], np.mean([c[:, :1] - c for c in curves], 0))
    assert (base["random_drop"][:, 1:] != 0).any()


def _store(tmp_path, x, scores, index):
    """A gathered store of windows ``x`` with relevance ``scores`` on the present base."""
    from lrp.genomics.store import open_store

    path = tmp_path / "relevance.npz"
    relevance = (x * scores[:, None, :]).astype(np.float32)
    np.savez(path, relevance=relevance, ohe=x.astype(np.int8), index=index)
    return open_store(path, keys=("relevance", "ohe"))


def test_selfcheck_shared_random_curves_give_the_per_method_numbers(tmp_path):
    """The self-check's random orders, computed once (the faithfulness baseline's file) and read by each
    method, give the numbers of computing them per method; a method then runs ``n_steps`` passes."""
    import pytest

    from lrp.core.errors import PlrpError
    from lrp.evaluation.evaluate import read_faith_baseline, write_faith_baseline
    from lrp.evaluation.metrics import evenly_spaced
    from lrp.motifs.seqlets import project

    rng = np.random.default_rng(5)
    N, L, windows = 30, 40, 12
    x, w, f, rows = _counted_model(rng, N, L)

    index = np.arange(100, 100 + N)  # region rows of the stored windows
    picked = evenly_spaced(N, windows)
    kw = {"n_steps": 4, "max_fraction": 0.25, "n_random": 3}
    base = selfcheck.deletion_baseline(f, x[picked], seed=9, **kw)
    assert sum(rows) == len(picked) * (1 + 3 * 4)
    faith = faithfulness_baseline(f, x[:2], n_steps=2)
    write_faith_baseline(tmp_path / "b.npz", index[:2], faith, {"rows": index[picked], **base})
    shared = read_faith_baseline(tmp_path / "b.npz")["selfcheck"]
    for method in range(3):
        scores = (x * w).sum(1) + rng.normal(scale=0.3 + method, size=(N, L))
        store = _store(tmp_path, x, scores, index)
        scalars = {"n_windows_with_site": 0}
        rows.clear()
        alone = selfcheck.check_store(store, scalars, f, max_windows=windows, seed=9, **kw)
        assert sum(rows) == len(picked) * (1 + 4 + 3 * 4)  # today's cost in every method's job
        rows.clear()
        reused = selfcheck.check_store(
            store, scalars, f, None, None, None, windows, 9, shared, **kw
        )
        assert sum(rows) == len(picked) * 4  # the relevance-ordered curve only
        assert reused == alone
        want = _reference_gain(f, x[picked], project(store.relevance[picked]), seed=9, **kw)
        assert alone["deletion"]["gain"] == float(want[np.isfinite(want)].mean())
    # a baseline of other windows or parameters is refused, naming its file and the fix
    for wrong in ({"max_windows": windows + 1}, {"seed": 8}, {"n_steps": 5}):
        args = {"max_windows": windows, "seed": 9, **kw, **wrong}
        with pytest.raises(PlrpError, match=r"b\.npz: .*Fix: rerun plrp faithfulness-baseline"):
            selfcheck.check_store(store, scalars, f, baseline=shared, **args)
