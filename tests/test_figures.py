"""Figures are written byte for byte the same from run to run (PNG and SVG)."""

import subprocess
import sys

SCRIPT = """
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from lrp.report.figures import save_figure

fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1, 2], [1, 3, 2], label="relevance")
ax.fill_between([0, 1, 2], 0, [1, 3, 2], alpha=0.3)
ax.text(1, 2, "CTCF")
ax.legend()
save_figure(fig, sys.argv[1], "figure", dpi=80)
"""


def test_figures_are_byte_identical_across_processes(tmp_path):
    for run in ("a", "b"):
        subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / run)], check=True)
    for ext in ("png", "svg"):
        a = (tmp_path / "a" / f"figure.{ext}").read_bytes()
        b = (tmp_path / "b" / f"figure.{ext}").read_bytes()
        assert a == b, ext
    assert b"<svg" in a[:2000]
