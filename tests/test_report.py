"""The HTML report: self-contained (images inlined), links only to files that exist."""

import base64
import re

import pandas as pd

from lrp.report import html as R
from lrp.steps.cli import main


def _figure(path, colour):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1], color=colour)
    ax.set_title("clip")  # titles use glyph ids; two inline SVGs must not share them
    fig.savefig(path)
    plt.close(fig)


def test_report_inlines_and_links(tmp_path):
    (tmp_path / "plots").mkdir()
    _figure(tmp_path / "plots" / "pr.png", "red")
    _figure(tmp_path / "plots" / "gini.svg", "blue")
    _figure(tmp_path / "plots" / "other.svg", "green")
    pd.DataFrame({"method": ["lrp", "plrp<b>"], "p": [0.0, 0.25], "gini": [0.4, 0.8]}).to_csv(
        tmp_path / "comparison.tsv", sep="\t", index=False
    )
    pd.DataFrame({"motif": ["plrp_0"], "match_name": ["CTCF"]}).to_csv(
        tmp_path / "motifs.tsv", sep="\t", index=False
    )
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    (tracks / "lrp.bw").write_bytes(b"x" * 10)
    out = tmp_path / "report" / "report.html"
    rc = main(
        [
            "report",
            "--comparison",
            str(tmp_path / "comparison.tsv"),
            "--plots",
            str(tmp_path / "plots" / "pr.png"),
            str(tmp_path / "plots" / "gini.svg"),
            str(tmp_path / "plots" / "other.svg"),
            "--motif-table",
            f"plrp={tmp_path / 'motifs.tsv'}",
            "--tracks",
            f"LRP bigWig={tracks / 'lrp.bw'}",
            str(tracks / "missing.bb"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = out.read_text()
    # Images inlined: the PNG's bytes as base64, the SVG as an element; nothing to fetch.
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert m and base64.b64decode(m.group(1)) == (tmp_path / "plots" / "pr.png").read_bytes()
    assert text.count("<svg") == 2
    assert R.external_references(text) == []
    assert "<script" not in text and "<link" not in text
    # SVG ids are namespaced per figure: no id appears twice.
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert ids and len(ids) == len(set(ids))
    # Tables escaped; links relative and only to existing files.
    assert "plrp&lt;b&gt;" in text and "CTCF" in text
    hrefs = [h for h in re.findall(r'href="([^"#][^"]*)"', text)]
    assert hrefs == ["../tracks/lrp.bw"]
    assert all((out.parent / h).is_file() for h in hrefs)
    assert "missing: not produced" in text


def test_report_without_inputs(tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", "--out", str(out)]) == 0
    assert "no comparison table" in out.read_text()


def test_bad_image_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.gif"
    bad.write_bytes(b"GIF89a")
    assert main(["report", "--plots", str(bad), "--out", str(tmp_path / "r.html")]) == 1
    assert "Fix:" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
