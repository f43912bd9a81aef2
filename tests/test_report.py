"""The HTML report: self-contained (images inlined), links only to files that exist."""

import base64
import io
import json
import re

import numpy as np
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
    # Images inlined: the PNG as base64 (at most as large as the file), the SVG as an element.
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    png = base64.b64decode(m.group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) <= (tmp_path / "plots" / "pr.png").stat().st_size
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


def test_wide_png_is_kept_at_screen_resolution(tmp_path):
    from PIL import Image

    path = tmp_path / "wide.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 4, (300, 3000, 3), dtype=np.uint8) * 60).save(path)
    m = re.search(r'base64,([^"]+)"', R.inline_image(path))
    with Image.open(io.BytesIO(base64.b64decode(m.group(1)))) as im:
        assert im.width == R.MAX_IMAGE_WIDTH and im.height == 120


def _comparison(tmp_path, flagged=True):
    """A comparison of three methods over two known TFs (CTCF, REST) and one label without sites."""

    def tf(n_calls, n_correct, n_sites, n_hit):
        p = n_correct / n_calls if n_calls else None
        r = n_hit / n_sites if n_sites else None
        f = 2 * p * r / (p + r) if p and r else None
        keys = ("precision", "recall", "f1", "n_calls", "n_correct", "n_sites", "n_sites_hit")
        return dict(zip(keys, (p, r, f, n_calls, n_correct, n_sites, n_hit)))

    per_tf = {
        "good": {"CTCF": tf(10, 9, 20, 15), "REST": tf(4, 4, 10, 3), "ZNF1": tf(5, 0, 0, 0)},
        "fast": {"CTCF": tf(3, 3, 20, 2), "REST": tf(0, 0, 10, 4)},
        "bad": {"CTCF": tf(2, 0, 20, 0), "REST": tf(0, 0, 10, 0)},
    }
    rows = [
        {"method": "bad", "family": "bad", "p": 0.0, "gini": 0.9, "auprc": 0.01, "f1": 0.0},
        {"method": "fast", "family": "fast", "p": 0.0, "gini": 0.5, "auprc": 0.2, "f1": 0.2},
        {"method": "good", "family": "good", "p": 0.0, "gini": 0.7, "auprc": 0.4, "f1": 0.7},
    ]
    table = pd.DataFrame(rows)
    if flagged:
        table["selfcheck_flag"] = [True, False, False]
        table["selfcheck_message"] = ["deletion is no better than random", "", ""]
        table["selfcheck_deletion_gain"] = [-0.1, 2.0, 3.0]
        table["selfcheck_auprc_ratio"] = [0.8, 15.0, 30.0]
    table.to_csv(tmp_path / "comparison.tsv", sep="\t", index=False)
    doc = {"methods": table["method"].tolist(), "table": rows, "per_tf": per_tf}
    (tmp_path / "comparison.json").write_text(json.dumps(doc))
    for m, s in (("good", 30.0), ("fast", 2.0)):
        (tmp_path / "bench" / m).mkdir(parents=True)
        for shard in range(2):
            pd.DataFrame({"s": [s / 2], "h:m:s": ["0:00:01"]}).to_csv(
                tmp_path / "bench" / m / f"{shard}.tsv", sep="\t", index=False
            )
    return doc


def _render(tmp_path):
    out = tmp_path / "report.html"
    args = ["report", "--comparison", str(tmp_path / "comparison.tsv")]
    args += ["--comparison-json", str(tmp_path / "comparison.json"), "--out", str(out)]
    args += ["--timings", *(f"{m}={tmp_path / 'bench' / m}" for m in ("good", "fast", "bad"))]
    assert main(args) == 0
    return out.read_text()


def test_summary_recovered_tfs_verdict_and_selfcheck(tmp_path):
    doc = _comparison(tmp_path)
    text = _render(tmp_path)
    summary = text[text.index('id="summary"') : text.index('id="matrix"')]
    # Recovered: a call named after the TF on its sites (n_correct > 0), best F1 first.
    got = dict(re.findall(r'data-tf="([^"]+)" data-recovered-by="([^"]*)"', summary))
    expect = {}
    for method in doc["methods"]:
        for tf, m in doc["per_tf"][method].items():
            if m["n_sites"]:
                expect.setdefault(tf, [])
                if m["n_correct"]:
                    expect[tf].append(method)
    assert {k: set(v.split(",")) - {""} for k, v in got.items()} == {
        k: set(v) for k, v in expect.items()
    }
    assert got["CTCF"] == "good,fast"  # F1 order
    assert "ZNF1" not in got  # no known sites: not a known TF
    # fast hit REST's sites with unlabelled calls only; bad missed both TFs.
    assert "sites hit, not named: fast" in summary and "missed: bad" in summary
    # The verdict: best per metric, with the attribution time summed over the shard benchmarks.
    measured = '<span class="measured">'  # the measured parts, masked when runs are compared
    assert f"F1 of the motif calls: <b>good</b> (0.7; attribution {measured}30 s</span>)" in summary
    assert f"Fastest attribution: {measured}<b>fast</b> (2 s)</span>" in summary
    # The self-check warning names the flagged method and its numbers.
    warn = re.search(r'<div class="warning" id="selfcheck">(.*?)</div>', summary, re.DOTALL)
    assert warn and 'data-method="bad"' in warn.group(1)
    assert "deletion is no better than random" in warn.group(1) and "-0.1" in warn.group(1)
    assert 'data-method="good"' not in warn.group(1)
    # The summary comes before every other section; the matrix folds the labels without sites.
    assert text.index('id="summary"') < text.index('id="matrix"') < text.index('id="tables"')
    matrix = text[text.index('id="matrix"') : text.index('id="tables"')]
    assert re.search(r"<details><summary>1 other TFs named by calls.*?ZNF1", matrix, re.DOTALL)
    assert 'id="toc"' in text and "position: sticky" in text


def test_no_flag_says_so_and_absent_selfcheck_says_nothing(tmp_path):
    _comparison(tmp_path, flagged=False)
    table = pd.read_csv(tmp_path / "comparison.tsv", sep="\t")
    table["selfcheck_flag"] = False
    table.to_csv(tmp_path / "comparison.tsv", sep="\t", index=False)
    assert "Self-check passed" in _render(tmp_path)
    table.drop(columns="selfcheck_flag").to_csv(tmp_path / "comparison.tsv", sep="\t", index=False)
    assert 'id="selfcheck"' not in _render(tmp_path)


def test_layer_sparsity_leaves_out_all_zero_layers(tmp_path):
    from lrp.report.comparison import plot_comparison

    docs = [
        {
            "method": m,
            "scalars": {},
            "layer_gini": {"names": ["head", "block.conv2", "conv"], "mean": [g, 0.0, 0.9]},
        }
        for m, g in (("lrp", 0.4), ("plrp", 0.6))
    ]
    table = pd.DataFrame(
        {"method": ["lrp", "plrp"], "family": ["lrp", "plrp"], "p": [0.0, 0.2], "gini": [0.5, 0.6]}
    )
    plot_comparison(docs, table, tmp_path)
    svg = (tmp_path / "layer_sparsity.svg").read_text()
    assert "left out, relevance zero for every method: block.conv2" in svg.replace("\n", "")
    # the tick labels: head and conv only
    assert svg.count("<!-- head -->") == 1 and "<!-- block.conv2 -->" not in svg
