"""Figures written as PNG and SVG, atomically and byte for byte the same from run to run."""

from pathlib import Path

from lrp.core.atomic import atomic_path

# SVG: matplotlib salts its element ids with a random uuid and stamps a date unless told otherwise
_SVG_SALT = "plrp"
_METADATA = {"png": {}, "svg": {"Date": None}}


def save_figure(fig, out_dir, stem, dpi):
    """Write ``fig`` as ``out_dir/stem.png`` and ``out_dir/stem.svg`` (atomically); close it."""
    import matplotlib
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": _SVG_SALT}):
        for ext in ("png", "svg"):
            with atomic_path(out_dir / f"{stem}.{ext}") as tmp:
                fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", metadata=_METADATA[ext])
    plt.close(fig)
