"""One self-contained HTML report: opens offline (images inlined, no external JS or CSS).

CLI::

    plrp report --comparison comparison.tsv [--comparison-json comparison.json] \\
        [--plots plots/*.png ...] [--logos NAME=logos/motifs.png ...] \\
        [--motif-table NAME=motif_matches.tsv ...] [--motifs NAME=motifs.npz ...] [--motif-db db.meme] \\
        [--timings NAME=benchmarks/attribute/ ...] [--figures-dir DIR] [--tracks tracks/*.bw calls.bb ...] \\
        [--igv-fasta genome.fa --igv-bigwigs [NAME=]BW ... --igv-calls [NAME=]BB ... \\
         --igv-known-sites sites.bed --igv-regions regions.bed] --out report.html [--title TEXT]

With ``--igv-fasta`` the report holds a genome browser (igv.js, vendored, data embedded: see ``lrp.report.igv``).
The sections (summary first, then the TF x method matrix, plots, browser, motifs and logos, tables) are
rendered by :mod:`lrp.report.sections` from the facts of :mod:`lrp.report.summary`. PNG images are inlined
as base64 ``data:`` URIs at screen resolution (palette PNG at most ``MAX_IMAGE_WIDTH`` px wide), each once;
SVG images as inline ``<svg>``; learned motifs as inline SVG logos (:mod:`lrp.report.svglogo`). Track links are relative
to the report's folder and written only for files that exist (missing ones are listed as not produced).
"""

import base64
import hashlib
import html
import io
import logging
import os
import re
from pathlib import Path

import pandas as pd

from lrp.core.atomic import atomic_open
from lrp.core.errors import input_error

log = logging.getLogger("plrp")

CSS = """
*, *::before, *::after { box-sizing: border-box; }
html { scroll-padding-top: 3em; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 0 1.2em 2em; max-width: 1240px;
  color: #222; line-height: 1.35; }
h1 { font-size: 1.5em; margin: .6em 0 .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.4em; }
h3 { font-size: 1.05em; margin: 1em 0 .3em; }
nav#toc { position: sticky; top: 0; z-index: 10; background: #fff; border-bottom: 1px solid #ddd;
  padding: .35em 0; font-size: .9em; }
nav#toc a { margin-right: 1.1em; color: #1a5fb4; text-decoration: none; white-space: nowrap; }
nav#toc a:hover { text-decoration: underline; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85em; margin: .4em 0 .8em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: middle; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
td.l, th.l { text-align: left; }
figure { display: inline-block; margin: .5em .8em .8em 0; vertical-align: top; max-width: 100%; }
figure img, figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #444; max-width: 62em; }
figcaption b { color: #222; }
.missing { color: #888; } .note { color: #555; font-size: .9em; }
details { margin: .4em 0; } summary { cursor: pointer; color: #1a5fb4; }
.verdict { background: #f4f8fc; border-left: 4px solid #1a5fb4; padding: .45em .8em; margin: .5em 0; }
.verdict ul { margin: .2em 0 0; padding-left: 1.2em; columns: 2; }
.warning { background: #fff4e5; border-left: 4px solid #e66100; padding: .45em .8em; margin: .5em 0; }
.ok { color: #26734d; }
.chip { display: inline-block; border-radius: 3px; padding: 0 .35em; margin: 1px 2px; font-size: .9em;
  white-space: nowrap; background: #e3f1e6; border: 1px solid #b5d8bd; }
.chip.unnamed { background: #f2f2f2; border-color: #ddd; color: #555; }
table.summary td, table.summary th, table.motifs td, table.motifs th { text-align: left; } table.summary svg.logo { display: block; }
td.f1 { min-width: 6.5em; } td.f1 small { display: block; color: #333; font-size: .85em; }
td.none { color: #aaa; }
"""

#: the widest an inlined PNG is kept (CSS pixels): the page's column, at screen resolution
MAX_IMAGE_WIDTH = 1200
#: colours of the PNG palette (plots and logos have few)
PNG_COLOURS = 128


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


def screen_png(data, max_width=MAX_IMAGE_WIDTH, colours=PNG_COLOURS):
    """PNG bytes at screen resolution: at most ``max_width`` pixels wide (Lanczos) and palette-coded
    (``colours``); returns the smaller of that and the input."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
        im = im.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
    return min(buf.getvalue(), data, key=len)


def inline_image(path, max_width=MAX_IMAGE_WIDTH):
    """HTML for one image file: base64 ``<img>`` for PNG/JPEG (PNG at screen resolution,
    :func:`screen_png`), inline ``<svg>`` for SVG."""
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
    data = path.read_bytes()
    if suffix == ".png":
        try:
            data = screen_png(data, max_width)
        except OSError as err:
            raise input_error(
                path, None, f"not a readable PNG ({err})", "redraw the image"
            ) from err
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:{mime};base64,{b64}">'


def table_html(df, float_format="{:.3g}"):
    """An escaped HTML table of a DataFrame, in a box that scrolls sideways when wider than the page."""

    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else float_format.format(v)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def figure_html(name, path, caption=None, seen=None):
    """A ``<figure>`` of one image file with its caption (HTML); a file not there is named as not
    produced. ``seen``: ``{file digest: name}`` of the images already in the page; a repeat is named, not
    inlined again."""
    path = Path(path)
    if not path.is_file():
        return f'<p class="missing">{html.escape(name)}: not produced</p>'
    if seen is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            return f'<p class="note">{html.escape(name)}: the same image as {html.escape(seen[digest])}</p>'
        seen[digest] = name
    text = f"<b>{html.escape(name)}</b>" + (f". {caption}" if caption else "")
    return f"<figure>{inline_image(path)}<figcaption>{text}</figcaption></figure>"


def build_report(
    out,
    comparison=None,
    comparison_json=None,
    plots=(),
    logos=(),
    motif_tables=(),
    tracks=(),
    title="plrp: pruned LRP explanations and motif calls",
    igv=None,
    motifs=(),
    motif_db=None,
    timings=(),
    figures_dir=None,
):
    """Assemble the HTML text (``out`` fixes the base of the relative track links).

    The page: the summary (:mod:`lrp.report.sections`), the TF x method matrix, the comparison plots with
    their captions, the genome browser (``igv``: the data of :func:`lrp.report.igv.build_view`, or None),
    each method's learned motifs and logos, the tables and the track files. ``motifs``, ``motif_tables``:
    ``[NAME=]PATH`` of each method's ``motifs.npz`` and ``motif_matches.tsv``; ``motif_db``: the motif
    database (MEME) the matches refer to; ``timings``: ``[NAME=]FOLDER`` of each method's attribution
    benchmarks. ``figures_dir``: also write each embedded plot there, as embedded (``snakemake --report``
    shows the same figures).
    """
    from lrp.report import sections

    out = Path(out)
    page = sections.Page(
        comparison=comparison,
        comparison_json=comparison_json,
        motifs=_named(motifs),
        motif_tables=_named(motif_tables),
        motif_db=motif_db,
        timings=_named(timings),
    )
    seen = {}
    parts = [f"<h1>{html.escape(title)}</h1>", page.summary(), page.matrix()]
    parts.append(page.plots(_named(plots), seen, figures_dir))
    if igv is not None:
        from lrp.report.igv import view_html

        parts += ['<h2 id="browser">Genome browser</h2>', view_html(igv)]
    parts.append(page.logos(_named(logos), seen))
    parts.append(page.tables())
    parts.append(_tracks(_named(tracks), out.parent.resolve()))
    toc = page.toc(browser=igv is not None, tracks=bool(tracks))
    body = "\n".join(p for p in parts if p)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{toc}\n"
        f"{page.defs()}\n{body}\n</body></html>\n"
    )


def _tracks(items, base):
    """The list of track files, linked relative to ``base``."""
    if not items:
        return ""
    parts = ['<h2 id="tracks">Track files</h2><ul>']
    for name, path in items:
        if path.is_file():
            rel = os.path.relpath(path.resolve(), base)
            parts.append(
                f'<li><a href="{html.escape(Path(rel).as_posix())}">'
                f"{html.escape(name)}</a> ({path.stat().st_size:,} bytes)</li>"
            )
        else:
            parts.append(f'<li class="missing">{html.escape(name)}: not produced</li>')
    parts.append("</ul>")
    return "".join(parts)


def external_references(text):
    """Remote resources an HTML text would load (``src``/``href`` to http(s) or protocol-relative).

    Inline script bodies are skipped (their string literals are not loaded by the page)."""
    text = re.sub(
        r"(<script\b[^>]*>).*?(</script>)", r"\1\2", text, flags=re.DOTALL | re.IGNORECASE
    )
    refs = re.findall(r"""(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", text)
    refs += re.findall(r"""<link[^>]+rel=["']stylesheet""", text)
    return refs


def write_report(out, *args, **kwargs):
    """Build the report (:func:`build_report`, same arguments) and write it to ``out`` atomically; remote
    references (which would need a network) are logged as a warning. Returns the HTML text."""
    text = build_report(out, *args, **kwargs)
    remote = external_references(text)
    if remote:  # inlined SVGs may carry links of their own
        log.warning("report: %d remote references (e.g. %s)", len(remote), remote[0])
    with atomic_open(out, encoding="utf-8") as h:
        h.write(text)
    log.info("report: %s (%d kB)", out, len(text) // 1024)
    return text
