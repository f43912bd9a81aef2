"""Multiple-testing corrections of motif matches (Benjamini-Hochberg per query)."""

import numpy as np


def bh_best_q(pvals):
    """Benjamini-Hochberg q-value of the best (smallest) p-value in each row of ``pvals (n, m)``."""
    return bh_q(pvals).min(axis=1)


def bh_q(pvals):
    """Benjamini-Hochberg q-values of every entry of ``pvals (n, m)``, each row on its own."""
    p = np.asarray(pvals, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    m = p.shape[1]
    order = np.argsort(p, axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1) * m / np.arange(1, m + 1)
    ranked = np.minimum(1.0, np.minimum.accumulate(ranked[:, ::-1], axis=1)[:, ::-1])
    q = np.empty_like(p)
    np.put_along_axis(q, order, ranked, axis=1)
    return q
