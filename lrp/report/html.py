"""One self-contained HTML report: opens offline (images inlined, no external JS or CSS).

CLI::

    plrp report --comparison comparison.tsv [--comparison-json comparison.json] \\
        [--plots plots/*.png ...] [--logos NAME=logos/motifs.png ...] \\
        [--motif-table NAME=motif_matches.tsv ...] [--tracks tracks/*.bw calls.bb ...] \\
        [--igv-fasta genome.fa --igv-bigwigs [NAME=]BW ... --igv-calls [NAME=]BB ... \\
         --igv-known-sites sites.bed --igv-regions regions.bed] --out report.html [--title TEXT]

With ``--igv-fasta`` the report holds a genome browser (igv.js, vendored, data embedded: see ``lrp.report.igv``).
PNG images are inlined as base64 ``data:`` URIs, SVG images as inline ``<svg>``. Track links are relative
to the report's folder and written only for files that exist (missing ones are listed as not produced).
"""

import base64
import html
import json
import logging
import os
import re
from pathlib import Path

import pandas as pd

from lrp.core.atomic import atomic_open
from lrp.core.errors import input_error

log = logging.getLogger("plrp")

CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1300px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: .5em; vertical-align: top; }
figure img, figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; } .missing { color: #999; }
"""


def _named(items):
    """``NAME=PATH`` or ``PATH`` items -> list of ``(name, Path)``."""
    out = []
    for item in items or []:
        name, sep, path = str(item).partition("=")
        out.append((name, Path(path)) if sep else (Path(item).stem, Path(item)))
    return out


def _namespace_svg(text, prefix):
    """Prefix every ``id`` of an SVG (and its ``#id`` references): several inline SVGs, one document."""
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    if not ids:
        return text
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)

    def ref(m):
        return f"{m.group(1)}#{prefix}{m.group(2)}" if m.group(2) in ids else m.group(0)

    return re.sub(r'((?:href="|url\())#([^")]+)', ref, text)


_counter = [0]


def inline_image(path):
    """HTML for one image file: base64 ``<img>`` for PNG/JPEG, inline ``<svg>`` for SVG."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        text = path.read_text()
        start = text.find("<svg")
        if start < 0:
            raise input_error(path, None, "no <svg> element", "give a valid SVG file")
        _counter[0] += 1
        return _namespace_svg(text[start:], f"f{_counter[0]}-")
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(suffix)
    if mime is None:
        raise input_error(path, None, f"unsupported image type {suffix}", "give PNG or SVG")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:{mime};base64,{data}">'


def table_html(df, float_format="{:.3g}"):
    """An escaped HTML table of a DataFrame."""

    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else float_format.format(v)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(items):
    parts = []
    for name, path in items:
        if path.is_file():
            parts.append(
                f"<figure>{inline_image(path)}<figcaption>{html.escape(name)}</figcaption></figure>"
            )
        else:
            parts.append(f'<p class="missing">{html.escape(name)}: not produced</p>')
    return "\n".join(parts)


def _per_tf_table(doc):
    rows = []
    for method, per in (doc.get("per_tf") or {}).items():
        for tf, m in per.items():
            rows.append(
                {
                    "method": method,
                    "TF": tf,
                    **{
                        k: m.get(k)
                        for k in ("precision", "recall", "f1", "n_calls", "n_sites", "n_sites_hit")
                    },
                }
            )
    df = pd.DataFrame(rows)
    return df.astype({c: float for c in ("precision", "recall", "f1")}) if len(df) else df


def build_report(
    out,
    comparison=None,
    comparison_json=None,
    plots=(),
    logos=(),
    motif_tables=(),
    tracks=(),
    title="plrp report",
    igv=None,
):
    """Assemble the HTML text (``out`` fixes the base of the relative track links); ``igv``: the data of
    the genome-browser view (``lrp.report.igv.build_view``) or None."""
    out = Path(out)
    base = out.parent.resolve()
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append("<h2>Comparison of methods</h2>")
    if comparison and Path(comparison).is_file():
        parts.append(table_html(pd.read_csv(comparison, sep="\t")))
        parts.append(
            "<p>gini: sparsity of |R.sum(0)| (1 = one position). rma/rra/auprc: relevance on "
            "the known sites. precision/recall/f1: motif calls against known sites (label "
            "checked). aopc: drop of f_t when the most relevant positions are deleted first "
            "(gain: over random order).</p>"
        )
    else:
        parts.append('<p class="missing">no comparison table</p>')
    if comparison_json and Path(comparison_json).is_file():
        per_tf = _per_tf_table(json.loads(Path(comparison_json).read_text()))
        if len(per_tf):
            parts += ["<h2>Motif calls per TF</h2>", table_html(per_tf)]
    if igv is not None:
        from lrp.report.igv import view_html

        parts += ['<h2 id="genome-browser">Genome browser</h2>', view_html(igv)]
    if plots:
        parts += ["<h2>Plots</h2>", _figures(_named(plots))]
    if logos:
        parts += ["<h2>Logos</h2>", _figures(_named(logos))]
    for name, path in _named(motif_tables):
        parts.append(f"<h2>Learned motifs: {html.escape(name)}</h2>")
        if path.is_file():
            parts.append(table_html(pd.read_csv(path, sep="\t", keep_default_na=False)))
        else:
            parts.append('<p class="missing">not produced</p>')
    if tracks:
        parts.append("<h2>Tracks</h2><ul>")
        for name, path in _named(tracks):
            if path.is_file():
                rel = os.path.relpath(path.resolve(), base)
                parts.append(
                    f'<li><a href="{html.escape(Path(rel).as_posix())}">'
                    f"{html.escape(name)}</a> ({path.stat().st_size:,} bytes)</li>"
                )
            else:
                parts.append(f'<li class="missing">{html.escape(name)}: not produced</li>')
        parts.append("</ul>")
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
        "</body></html>\n"
    )


def external_references(text):
    """Remote resources an HTML text would load (``src``/``href`` to http(s) or protocol-relative).

    Inline script bodies are skipped (their string literals are not loaded by the page)."""
    text = re.sub(
        r"(<script\b[^>]*>).*?(</script>)", r"\1\2", text, flags=re.DOTALL | re.IGNORECASE
    )
    refs = re.findall(r"""(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", text)
    refs += re.findall(r"""<link[^>]+rel=["']stylesheet""", text)
    return refs


def report_arguments(parser):
    parser.add_argument("--comparison", help="comparison.tsv (plrp evaluate --compare)")
    parser.add_argument("--comparison-json", help="comparison.json (per-TF call metrics)")
    parser.add_argument("--plots", nargs="*", default=[], metavar="[NAME=]IMG", help="plot images")
    parser.add_argument("--logos", nargs="*", default=[], metavar="[NAME=]IMG", help="logo images")
    parser.add_argument(
        "--motif-table",
        nargs="*",
        default=[],
        metavar="[NAME=]TSV",
        help="motif_matches.tsv per method",
    )
    parser.add_argument(
        "--tracks",
        nargs="*",
        default=[],
        metavar="[NAME=]FILE",
        help="track files to link (bigWig, bigBed, BED, hub); missing ones are not linked",
    )
    parser.add_argument("--title", default="plrp: pruned LRP explanations and motif calls")
    g = parser.add_argument_group("genome browser (igv.js, embedded; on with --igv-fasta)")
    g.add_argument("--igv-fasta", help="genome FASTA: adds the igv.js view")
    g.add_argument("--igv-bigwigs", nargs="*", default=[], metavar="[NAME=]BW", help="relevance")
    g.add_argument(
        "--igv-calls", nargs="*", default=[], metavar="[NAME=]BB", help="motif calls (bigBed/BED)"
    )
    g.add_argument("--igv-known-sites", help="known sites BED")
    g.add_argument("--igv-regions", help="explained regions BED (default: the first bigWig's)")
    g.add_argument("--igv-genome-name", default="genome", help="genome name shown")
    g.add_argument("--igv-top", type=int, default=20, help="top loci listed (default 20)")
    g.add_argument(
        "--igv-max-bases", type=int, default=2_000_000, help="bp embedded (default 2,000,000)"
    )
    g.add_argument(
        "--igv-max-values",
        type=int,
        default=1_000_000,
        help="relevance values embedded over all tracks; sets the bin size (default 1,000,000)",
    )
    parser.add_argument("--out", required=True, help="report.html")


def _igv_view(args):
    if not args.igv_fasta:
        return None
    from lrp.report.hub import named_paths
    from lrp.report.igv import build_view

    return build_view(
        args.igv_fasta,
        named_paths(args.igv_bigwigs),
        named_paths(args.igv_calls),
        known_sites=args.igv_known_sites,
        regions=args.igv_regions,
        top=args.igv_top,
        max_bases=args.igv_max_bases,
        max_values=args.igv_max_values,
        genome_name=args.igv_genome_name,
    )


def report_main(args):
    text = build_report(
        args.out,
        args.comparison,
        args.comparison_json,
        args.plots,
        args.logos,
        args.motif_table,
        args.tracks,
        args.title,
        igv=_igv_view(args),
    )
    remote = external_references(text)
    if remote:  # inlined SVGs may carry links of their own
        log.warning("report: %d remote references (e.g. %s)", len(remote), remote[0])
    with atomic_open(args.out, encoding="utf-8") as h:
        h.write(text)
    log.info("report: %s (%d kB)", args.out, len(text) // 1024)
