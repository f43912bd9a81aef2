"""Logo figures: real PNGs (read back, not blank) and SVGs."""

import numpy as np
import pytest
from test_calls import build_setup, run_call_motifs

from lrp.report import logos as Lg
from lrp.report.figures import save_figure
from lrp.steps.cli import main


def _not_blank(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    rgb = img[..., :3]
    # Some ink: a real share of pixels is far from white, and there are several colours.
    assert (rgb.min(-1) < 0.5).mean() > 0.005
    assert len(np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 10


def _svg(path):
    text = path.read_text()
    assert "<svg" in text and "<path" in text


@pytest.fixture(scope="module")
def logos(tmp_path_factory):
    root = tmp_path_factory.mktemp("logos")
    s = build_setup(root)
    rel = s["relevance"]
    calls = root / "calls.tsv"
    run_call_motifs(s, str(rel["plrp_p0.5"]), str(root / "c.bed"), str(calls))
    mo = {k: root / f"motifs.{k}" for k in ("meme", "tsv", "npz")}
    assert (
        main(
            [
                "motifs",
                "--relevance",
                str(rel["plrp_p0.5"]),
                "--calls",
                str(calls),
                "--motif-db",
                str(s["db"]),
                "--out-meme",
                str(mo["meme"]),
                "--out-tsv",
                str(mo["tsv"]),
                "--out-npz",
                str(mo["npz"]),
                "--min-seqlets",
                "3",
            ]
        )
        == 0
    )
    out = root / "logos"
    assert (
        main(
            [
                "logos",
                "--relevance",
                f"plrp={rel['plrp_p0.5']}",
                f"lrp={rel['lrp']}",
                "--calls",
                str(calls),
                "--motifs",
                str(mo["npz"]),
                "--motif-table",
                str(mo["tsv"]),
                "--motif-db",
                str(s["db"]),
                "--out-dir",
                str(out),
                "--top-sites",
                "4",
            ]
        )
        == 0
    )
    return out


@pytest.mark.parametrize("stem", Lg.FIGURES)
def test_figures_written(logos, stem):
    _not_blank(logos / f"{stem}.png")
    _svg(logos / f"{stem}.svg")
    assert not list(logos.glob(".*"))  # no temporary files left


def test_motif_figure_names_matches(logos):
    text = (logos / "motifs.svg").read_text()
    for tf in ("CTCF", "REST", "TP53"):
        assert tf in text


def test_long_window_uses_plot_logo(tmp_path):
    plt = Lg._plt()
    rng = np.random.default_rng(0)
    x = np.eye(4)[:, rng.integers(0, 4, 400)] * rng.normal(size=400)
    fig, ax = plt.subplots(figsize=(8, 2))
    Lg.draw_logo(ax, x)
    save_figure(fig, tmp_path, "long", dpi=80)
    _not_blank(tmp_path / "long.png")


def test_empty_inputs_still_draw(tmp_path):
    import pandas as pd

    empty = pd.DataFrame(
        columns=[
            "chrom",
            "start",
            "end",
            "name",
            "row",
            "window_start",
            "window_end",
            "attribution",
            "q",
            "region",
        ]
    )
    save_figure(Lg.motifs_figure([], None, None), tmp_path, "m", dpi=80)
    save_figure(Lg.sites_figure(empty, np.zeros((1, 4, 10))), tmp_path, "s", dpi=80)
    assert (tmp_path / "m.png").stat().st_size > 0 and (tmp_path / "s.svg").stat().st_size > 0


def test_information_content():
    ic = Lg.information(np.array([[1, 0.25], [0, 0.25], [0, 0.25], [0, 0.25]]))
    assert ic[:, 0].sum() == pytest.approx(2, abs=1e-6) and ic[:, 1].sum() == pytest.approx(
        0, abs=1e-6
    )


def test_letters_as_logomaker_places_them():
    """The fast drawer puts every letter of non-zero height where logomaker does (same outline, colour,
    limits), for signed dense and projected (one non-zero per column) columns."""
    import logomaker
    import pandas as pd

    plt = Lg._plt()
    rng = np.random.default_rng(3)
    m = rng.normal(size=(4, 14))
    m[:, :7] *= np.eye(4)[:, rng.integers(0, 4, 7)]
    fig, ax = plt.subplots()
    ref = logomaker.Logo(
        pd.DataFrame(m.T, columns=list("ACGT"), index=np.arange(20, 34)),
        ax=ax,
        color_scheme="classic",
    )
    glyphs = [g for g in ref.glyph_list if g.ceiling > g.floor]
    paths, colours, xlim, ylim = Lg.logo_paths(m, start=20)
    plt.close(fig)
    assert len(paths) == len(glyphs) == 7 + 4 * 7
    assert np.allclose(xlim, ax.get_xlim()) and np.allclose(ylim, ax.get_ylim())
    by_corner = {tuple(np.round(p.vertices.min(0), 9)): (p, c) for p, c in zip(paths, colours)}
    for g in glyphs:
        ours, colour = by_corner[tuple(np.round(g.patch.get_path().vertices.min(0), 9))]
        assert np.allclose(ours.vertices, g.patch.get_path().vertices, atol=1e-9)
        assert (ours.codes == g.patch.get_path().codes).all()
        assert np.allclose(colour, g.patch.get_facecolor()[:3])
