"""What ``plrp evaluate`` spends: its start-up imports only what a run needs, and the self-check's deletion
test runs the model once on the intact windows (issue 13)."""

import subprocess
import sys

import numpy as np

from lrp.evaluation import selfcheck
from lrp.evaluation.metrics import _background, perturbation_curve


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


def test_deletion_gain_runs_the_intact_windows_once_and_gives_the_same_numbers():
    rng = np.random.default_rng(3)
    N, L = 12, 50
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (N, L))].transpose(0, 2, 1)
    w = rng.normal(size=(4, L)).astype(np.float32)
    rows = []

    def f(xb):
        rows.append(len(xb))
        return np.tanh((np.asarray(xb) * w).sum((1, 2)))

    scores = (x * w).sum(1).astype(np.float64) + rng.normal(scale=0.5, size=(N, L))
    kw = {"n_steps": 5, "max_fraction": 0.3, "n_random": 3, "seed": 7}
    gain = selfcheck.deletion_gain(f, x, scores, **kw)
    calls = sum(rows)
    rows.clear()
    np.testing.assert_array_equal(gain, _reference_gain(f, x, scores, **kw))
    # 1 intact pass + 4 orders x 5 deletion steps, against 4 x 6 passes when each order redid the intact
    assert calls == N * (1 + 4 * 5) and sum(rows) == N * 4 * 6
    assert np.isfinite(gain).all() and gain.mean() > 0  # the relevance ranks better than random
