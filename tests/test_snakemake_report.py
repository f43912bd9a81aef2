"""``snakemake --report`` of a tiny real run (test_workflow's local run, made once per test session): the
comparison plots the HTML report shows, each with its caption and category, and the same image bytes as in the
HTML report."""

import base64
import re
import zipfile

import pytest
from conftest import snakemake, tiny
from test_workflow import local_run, runs  # noqa: F401 - the shared run, a fixture

from lrp.report.sections import CAPTIONS, PLOT_TITLES

pytestmark = pytest.mark.slow

BASE = "results/demo/demo"


@pytest.fixture(scope="module")
def run(request, tmp_path_factory):
    workdir = request.getfixturevalue("local_run")
    zipped = tmp_path_factory.mktemp("smk_report") / "snakemake_report.zip"
    result = snakemake(workdir, "--report", str(zipped), config=tiny())
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(zipped) as archive:
        files = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    return workdir, files


def test_report_holds_every_plot_with_its_caption(run):
    workdir, files = run
    text = "\n".join(
        data.decode("utf-8", "replace")
        for name, data in files.items()
        if name.endswith((".html", ".js", ".json"))
    )
    assert any(n.endswith("report.html") for n in files)
    assert any(n.endswith("comparison.tsv") for n in files)
    assert "Comparison plots" in text  # the category
    for plot in PLOT_TITLES:
        figure = workdir / BASE / "report_figures" / f"{plot}.png"
        # Snakemake stores each result as data/raw/HASH/NAME
        assert figure.read_bytes() in [d for n, d in files.items() if n.endswith(f"/{plot}.png")]
        # the caption's first sentence, as Snakemake renders the rst (``code`` becomes <code>)
        first = " ".join((CAPTIONS / f"{plot}.rst").read_text().split()).split(". ")[0]
        words = re.sub(r"``([^`]+)``", r"\1", first).split()[:6]
        assert " ".join(words) in re.sub(r"<[^>]+>|\s+", " ", text).replace("  ", " "), plot


def test_html_report_shows_the_same_images(run):
    workdir, _ = run
    page = (workdir / BASE / "report.html").read_text()
    embedded = {
        base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    }
    for plot in ("metrics_vs_p", "pr_curves", "layer_sparsity"):
        assert (workdir / BASE / "report_figures" / f"{plot}.png").read_bytes() in embedded, plot
