"""The sections of the HTML report (:func:`lrp.report.html.build_report` puts them in order).

:class:`Page` reads the comparison, the learned motifs and the timings once and renders the summary (what each
method found), the TF x method matrix, the plots with their captions (``data/captions/STEM.rst``, the same
files the workflow gives ``snakemake --report``), each method's learned motifs and logos, and the tables.
"""

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_path
from lrp.report import summary as S
from lrp.report.html import figure_html, screen_png, table_html
from lrp.report.svglogo import glyph_defs, logo_symbol, use_logo

CAPTIONS = Path(__file__).parent / "data" / "captions"
#: the comparison plots' titles, in page order
PLOT_TITLES = {
    "metrics_vs_p": "Metrics against the pruned share p",
    "pr_curves": "Precision-recall of the known-site positions",
    "faithfulness": "Faithfulness: deleting the most relevant positions",
    "layer_sparsity": "Sparsity of the relevance per layer",
}
LOGO_TITLES = {"sites": "strongest calls", "examples": "example windows, every method"}


def caption(stem):
    """The caption of figure ``stem`` as HTML (from ``data/captions/STEM.rst``; ````code```` marked up),
    or None."""
    path = CAPTIONS / f"{stem}.rst"
    if not path.is_file():
        return None
    text = html.escape(" ".join(path.read_text().split()))
    return re.sub(r"``(.+?)``", r"<code>\1</code>", text)


def _fmt(v, digits=2):
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def _duration(s):
    return f"{s:.0f} s" if s < 600 else f"{s / 60:.0f} min"


def measured(html_text):
    """``html_text`` of a measured fact (a time, or a name chosen by one) marked ``class="measured"``: the
    one part of the page that differs from run to run of the same config (the tests that compare runs byte
    for byte mask it)."""
    return f'<span class="measured">{html_text}</span>'


def _seconds(s):
    return None if s is None else measured(_duration(s))


def _f1_colour(f1):
    """Background for an F1 cell: white (0) to green (1)."""
    if f1 is None or not np.isfinite(f1):
        return "#fff"
    lo, hi = np.array([255, 255, 255]), np.array([92, 184, 120])
    r, g, b = np.rint(lo + (hi - lo) * min(max(f1, 0.0), 1.0)).astype(int)
    return f"rgb({r},{g},{b})"


class Page:
    """The report's data, read once; one method per section."""

    def __init__(
        self, comparison, comparison_json, motifs, motif_tables, motif_db=None, timings=()
    ):
        self.table = (
            pd.read_csv(comparison, sep="\t") if comparison and Path(comparison).is_file() else None
        )
        self.doc = (
            json.loads(Path(comparison_json).read_text())
            if comparison_json and Path(comparison_json).is_file()
            else None
        )
        if self.table is None and self.doc is not None and self.doc.get("table"):
            self.table = pd.DataFrame(self.doc["table"])
        self.methods = (
            list(self.doc.get("methods") or [])
            if self.doc
            else ([] if self.table is None else self.table["method"].tolist())
        )
        self.out = S.outcomes(self.doc or {})
        self.known = S.known_tfs(self.out)
        self.timings = S.read_timings(timings)
        from lrp.report.logos import read_motif_table

        self.motif_tables = {m: read_motif_table(p) for m, p in motif_tables if p.is_file()}
        self.missing_tables = [m for m, p in motif_tables if not p.is_file()]
        from lrp.motifs.learned import read_npz

        self.motifs = {m: {x["id"]: x for x in read_npz(p)} for m, p in motifs if p.is_file()}
        self.db = None
        if motif_db and Path(motif_db).is_file():
            from lrp.motifs.database import load_motif_db

            ids, names, pfms = load_motif_db(motif_db)
            self.db = dict(zip(ids, zip(names, pfms)))
        self._symbols = {}  # logo id -> (symbol svg, width, height)

    # ------------------------------------------------------------------------------------- logos
    def _logo(self, key, matrix, height, title):
        """An inline logo; its symbol is defined once in the page (:meth:`defs`)."""
        sid = "plrp-logo-" + re.sub(r"[^A-Za-z0-9_-]", "_", key)
        if sid not in self._symbols:
            self._symbols[sid] = logo_symbol(sid, matrix, height=height, column=9, px_height=34)
        _, w, h = self._symbols[sid]
        return use_logo(sid, w, h, title)

    def learned_logo(self, method, motif_id):
        """The learned CWM of ``motif_id`` (trimmed to its informative columns), or ''."""
        m = self.motifs.get(method, {}).get(motif_id)
        if m is None:
            return ""
        from lrp.motifs.learned import trim_bounds

        cwm = np.asarray(m["cwm"], dtype=np.float64)
        a, b = trim_bounds(cwm)
        cwm = cwm[:, a:b]
        top = max(
            float(np.clip(cwm, 0, None).sum(0).max()), float(np.clip(-cwm, 0, None).sum(0).max())
        )
        return self._logo(f"{method}-{motif_id}", cwm, top, f"{method} {motif_id}: CWM")

    def match_logo(self, row):
        """The database motif a learned motif matched (information content, the strand that matched)."""
        mid = str(row.get("match_id", "") or "")
        if self.db is None or mid not in self.db:
            return ""
        from lrp.report.logos import information

        name, pfm = self.db[mid]
        strand = str(row.get("match_strand", "+"))
        if strand == "-":
            pfm = pfm[::-1, ::-1]
        return self._logo(f"db-{mid}{strand}", information(pfm), 2.0, f"{mid} {name} ({strand})")

    def defs(self):
        """The glyphs and every logo symbol the sections used (call after them)."""
        if not self._symbols:
            return ""
        return glyph_defs() + "".join(s for s, _, _ in self._symbols.values())

    # ------------------------------------------------------------------------------------- sections
    def toc(self, browser, tracks):
        """The table of contents (sticky at the top of the window)."""
        links = [("summary", "Summary"), ("matrix", "TF x method")]
        links.append(("plots", "Plots"))
        if browser:
            links.append(("browser", "Genome browser"))
        links += [("motifs", "Motifs & logos"), ("tables", "Tables")]
        if tracks:
            links.append(("tracks", "Track files"))
        a = "".join(f'<a href="#{i}">{html.escape(t)}</a>' for i, t in links)
        return f'<nav id="toc">{a}</nav>'

    def summary(self):
        """What each method found: the verdict, the self-check, the known TFs and who recovered them."""
        parts = ['<section id="summary"><h2>Summary: what each method found</h2>']
        if self.table is None:
            parts.append('<p class="missing">no comparison table</p></section>')
            return "".join(parts)
        parts.append(self._verdict())
        parts.append(self._selfcheck())
        parts.append(self._choices())
        if len(self.known):
            parts.append(self._found_sentence())
            parts.append(self._known_table())
        else:
            parts.append(
                '<p class="note">No known sites in the explained regions: no TF to recover.</p>'
            )
        parts.append("</section>")
        return "".join(parts)

    def _verdict(self):
        items = []
        for v in S.verdict(self.table, self.timings):
            who = " = ".join(f"<b>{html.escape(m)}</b>" for m in v["methods"])
            t = _seconds(v["seconds"])
            items.append(
                f"<li>{html.escape(v['label'])}: {who} ({v['value']:.3g}"
                + (f"; attribution {t}" if t else "")
                + ")</li>"
            )
        if not items:
            return ""
        fast = ""
        if self.timings:
            m = min(self.timings, key=self.timings.get)
            fast = (
                " Fastest attribution: "
                + measured(f"<b>{html.escape(m)}</b> ({_duration(self.timings[m])})")
                + "."
            )
        return (
            f'<div class="verdict" id="verdict"><b>Verdict</b>, best method per metric (higher is '
            f"better).{fast}<ul>{''.join(items)}</ul></div>"
        )

    def _selfcheck(self):
        flagged = S.selfcheck(self.table)
        if flagged is None:
            return ""
        if not flagged:
            return (
                '<p class="ok" id="selfcheck">Self-check passed: every method\'s explanations beat '
                "random ones (deletion and AUPRC).</p>"
            )
        rows = []
        for f in flagged:
            extra = []
            if f["deletion_gain"] is not None:
                extra.append(f"deletion gain {f['deletion_gain']:.3g}")
            if f["auprc_ratio"] is not None:
                extra.append(f"AUPRC / random {f['auprc_ratio']:.3g}")
            more = f" ({', '.join(extra)})" if extra else ""
            rows.append(
                f'<li data-method="{html.escape(f["method"])}"><b>{html.escape(f["method"])}</b>: '
                f"{html.escape(f['message'])}{more}</li>"
            )
        return (
            '<div class="warning" id="selfcheck"><b>Self-check warning</b>: explanations no better '
            f"than random. Do not trust these methods' tracks and calls.<ul>{''.join(rows)}</ul></div>"
        )

    def _choices(self):
        rows = []
        for c in S.choices(self.table):
            what = []
            if c["composite"].startswith("auto"):
                what.append(f"rules {html.escape(c['composite'])}")
            if c["auto_p"] is not None:
                what.append(f"p per layer auto (mean {c['auto_p']:.3g})")
            rows.append(f"<li><b>{html.escape(c['method'])}</b>: {'; '.join(what)}</li>")
        if not rows:
            return ""
        return (
            '<div class="note" id="choices"><b>Chosen from the data</b> (by the deletion test on the '
            "model and windows, no known sites; the candidates' scores are in each method's "
            f"resolved_params.json):<ul>{''.join(rows)}</ul></div>"
        )

    def _found_sentence(self):
        k = self.known
        n = len(k)
        per = {m: int(k["recovered_by"].map(lambda r, m=m: m in r).sum()) for m in self.methods}
        ranked = sorted(per, key=lambda m: -per[m])
        counts = ", ".join(f"{html.escape(m)} {per[m]}" for m in ranked)
        none = k.loc[k["recovered_by"].map(len) == 0, "tf"].tolist()
        missed = (
            f" No method recovered {', '.join(html.escape(t) for t in none)}."
            if none
            else " Every known TF was recovered by at least one method."
        )
        return (
            f'<p id="found">Of the <b>{n}</b> TFs with known sites in the explained regions, each method '
            f"recovered (made calls named after the TF on its sites): {counts}.{missed}</p>"
        )

    def _known_table(self):
        rows = []
        for r in self.known.itertuples(index=False):
            g = self.out[self.out["tf"] == r.tf].set_index("method")
            chips = []
            for m in r.recovered_by:
                x = g.loc[m]
                chips.append(
                    f'<span class="chip" title="F1 {_fmt(x.f1)}, {x.n_correct}/{x.n_calls} calls right, '
                    f'{x.n_sites_hit}/{x.n_sites} sites hit">{html.escape(m)} '
                    f"R {_fmt(x.recall)} P {_fmt(x.precision)}</span>"
                )
            unnamed = [m for m in g.index if g.loc[m, "status"] == "unnamed"]
            missed = [m for m in g.index if g.loc[m, "status"] == "missed"]
            rest = []
            if unnamed:
                rest.append(
                    '<span class="chip unnamed" title="sites hit only by unlabelled calls">'
                    f"sites hit, not named: {html.escape(', '.join(unnamed))}</span>"
                )
            if missed:
                rest.append(f'<span class="note">missed: {html.escape(", ".join(missed))}</span>')
            best = S.best_motif(r.tf, self.out, self.motif_tables)
            learned = match = ""
            if best is not None:
                method, row = best
                learned = self.learned_logo(method, str(row["motif"]))
                learned += f'<small class="note">{html.escape(method)} {html.escape(str(row["motif"]))}</small>'
                match = self.match_logo(row)
                if match:
                    match += (
                        f'<small class="note">{html.escape(str(row.get("match_id", "")))}</small>'
                    )
            rows.append(
                f'<tr data-tf="{html.escape(r.tf)}" data-recovered-by="{html.escape(",".join(r.recovered_by))}">'
                f"<td><b>{html.escape(r.tf)}</b><br><small>{r.n_sites} sites</small></td>"
                f"<td>{learned or '<span class=note>no learned motif</span>'}</td><td>{match}</td>"
                f"<td>{''.join(chips) or '<b>no method</b>'} {' '.join(rest)}</td></tr>"
            )
        return (
            '<div class="scroll"><table class="summary" id="known-tfs"><thead><tr><th>known TF</th>'
            "<th>learned motif</th><th>database match</th><th>recovered by (recall R, precision P)</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    def matrix(self):
        """The TF x method matrix coloured by F1; TFs no method found and labels without sites fold."""
        if not len(self.out):
            return ""
        parts = [
            '<section id="matrix"><h2>Recovery per TF and method</h2>',
            (
                '<p class="note">Cells: F1 of the calls named after the TF (colour: 0 white to 1 green), '
                "with recall R (sites hit) and precision P (calls on a site of that TF). "
                "<i>hit</i>: sites hit by unlabelled calls only.</p>"
            ),
        ]
        found = self.known[self.known["recovered_by"].map(len) > 0]["tf"].tolist()
        lost = self.known[self.known["recovered_by"].map(len) == 0]["tf"].tolist()
        parts.append(self._matrix_table(found, "tf-matrix", known=True))
        if lost:
            parts.append(
                f"<details><summary>{len(lost)} known TFs no method recovered</summary>"
                f"{self._matrix_table(lost, 'tf-matrix-missed', known=True)}</details>"
            )
        other = sorted(set(self.out.loc[self.out["status"] == "no sites", "tf"]))
        if other:
            parts.append(
                f"<details><summary>{len(other)} other TFs named by calls, without known sites "
                "(cells: calls named after the TF, and the share on some known site)</summary>"
                f"{self._matrix_table(other, 'tf-matrix-other', known=False)}</details>"
            )
        parts.append("</section>")
        return "".join(parts)

    def _matrix_table(self, tfs, table_id, known):
        g = self.out.set_index(["tf", "method"])
        head = "".join(f"<th>{html.escape(m)}</th>" for m in self.methods)
        rows = []
        for tf in tfs:
            cells = []
            for m in self.methods:
                if (tf, m) not in g.index:
                    cells.append('<td class="none">–</td>')
                    continue
                x = g.loc[(tf, m)]
                if not known:
                    cells.append(
                        f"<td>{x.n_calls} calls<small> P {_fmt(x.precision)}</small></td>"
                        if x.n_calls
                        else '<td class="none">–</td>'
                    )
                elif x.status == "recovered":
                    cells.append(
                        f'<td class="f1" style="background:{_f1_colour(x.f1)}">{_fmt(x.f1)}'
                        f"<small>R {_fmt(x.recall)} P {_fmt(x.precision)}</small></td>"
                    )
                elif x.status == "unnamed":
                    cells.append(
                        f'<td class="f1 none"><i>hit</i><small>R {_fmt(x.recall)}</small></td>'
                    )
                else:
                    cells.append('<td class="f1 none">0</td>')
            n = int(g.xs(tf, level="tf")["n_sites"].max())
            label = f"{html.escape(tf)}" + (f" <small>({n})</small>" if known else "")
            rows.append(f"<tr><td>{label}</td>{''.join(cells)}</tr>")
        return (
            f'<div class="scroll"><table id="{table_id}"><thead><tr><th>TF'
            f"{' (sites)' if known else ''}</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            "</table></div>"
        )

    def plots(self, plots, seen, figures_dir=None):
        """The comparison plots, each with its caption; a plot with nothing to draw is named, not shown.
        ``figures_dir``: also write every plot there at the page's resolution (:func:`screen_png`)."""
        if not plots:
            return ""
        parts = ['<section id="plots"><h2>Comparison plots</h2>']
        order = {s: i for i, s in enumerate(PLOT_TITLES)}
        for name, path in sorted(plots, key=lambda np_: order.get(np_[0], len(order))):
            if figures_dir is not None and path.is_file():  # every plot, as the page would show it
                Path(figures_dir).mkdir(parents=True, exist_ok=True)
                with atomic_path(Path(figures_dir) / path.name) as tmp:
                    data = path.read_bytes()
                    tmp.write_bytes(screen_png(data) if path.suffix.lower() == ".png" else data)
            why = self._empty_plot(name)
            title = PLOT_TITLES.get(name, name)
            if why:
                parts.append(
                    f'<p class="note" id="plot-{html.escape(name)}-left-out">'
                    f"<b>{html.escape(title)}</b>: left out, {html.escape(why)}.</p>"
                )
                continue
            parts.append(figure_html(title, path, caption(name), seen))
        parts.append("</section>")
        return "".join(parts)

    def _empty_plot(self, name):
        """Why plot ``name`` has nothing to show, or None."""
        t = self.table
        if t is None:
            return None
        if name == "faithfulness" and not (
            "aopc_gain" in t and pd.to_numeric(t["aopc_gain"], errors="coerce").notna().any()
        ):
            return (
                "no method was scored for faithfulness (the comparison was run without the model)"
            )
        if name == "pr_curves" and not (
            "auprc" in t and pd.to_numeric(t["auprc"], errors="coerce").notna().any()
        ):
            return "no known sites in the explained windows"
        return None

    def logos(self, logos, seen):
        """Per method (folded): its learned motifs with their database matches, and its logo figures."""
        by_method = {}
        for name, path in logos:
            method, _, figure = name.rpartition("/")
            by_method.setdefault(method or name, []).append((figure or name, path))
        methods = list(dict.fromkeys([*self.methods, *self.motif_tables, *by_method]))
        if not methods:
            return ""
        parts = [
            '<section id="motifs"><h2>Learned motifs and logos per method</h2>',
            (
                '<p class="note">Each method\'s learned motifs (contribution weight matrices) beside their best '
                "database match, and relevance logos of its strongest calls. Open a method to see them.</p>"
            ),
        ]
        for m in methods:
            body = [self._motif_table(m)]
            for figure, path in by_method.get(m, []):
                if figure == "motifs" and m in self.motifs:
                    continue  # drawn above as logos, not again as a picture
                title = f"{m}: {LOGO_TITLES.get(figure, figure)}"
                body.append(figure_html(title, path, caption(figure), seen))
            n = len(self.motif_tables.get(m, []))
            parts.append(
                f"<details><summary>{html.escape(m)}: {n} learned motifs"
                f"</summary>{''.join(body)}</details>"
            )
        parts.append("</section>")
        return "".join(parts)

    def _motif_table(self, m):
        if m in self.missing_tables:
            return '<p class="missing">learned motifs: not produced</p>'
        t = self.motif_tables.get(m)
        if t is None:
            return ""
        if not len(t):
            return '<p class="note">no learned motifs</p>'
        rows = []
        for _, r in t.iterrows():
            q = pd.to_numeric(r.get("q"), errors="coerce")
            rows.append(
                f"<tr><td>{html.escape(str(r['motif']))}</td><td class=l>{html.escape(str(r.get('name', '')))}</td>"
                f"<td>{r.get('n_seqlets', '')}</td><td>{self.learned_logo(m, str(r['motif']))}</td>"
                f"<td>{self.match_logo(r)}</td>"
                f"<td class=l>{html.escape(str(r.get('match_id', '')))} {html.escape(str(r.get('match_name', '')))}</td>"
                f"<td>{'' if pd.isna(q) else f'{q:.2g}'}</td></tr>"
            )
        return (
            '<div class="scroll"><table class="motifs"><thead><tr><th>motif</th><th class=l>name</th>'
            "<th>seqlets</th><th>learned CWM</th><th>database match</th><th class=l>match</th><th>q</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    def tables(self):
        """The raw tables: the comparison of methods (every column) and the per-TF numbers, folded."""
        parts = ['<section id="tables"><h2>Tables</h2>']
        if self.table is None:
            parts.append('<p class="missing">no comparison table</p>')
        else:
            parts.append("<h3>Comparison of methods</h3>")
            parts.append(table_html(self.table))
            parts.append(
                '<p class="note">gini: sparsity of |R.sum(0)| (1 = one position). rma/rra/auprc: '
                "relevance on the known sites. precision/recall/f1: motif calls against known sites "
                "(label checked), every method called at the same FDR under its own shuffled null "
                "(config calls.fdr). aopc: drop of f_t when the most relevant positions are deleted "
                "first, ties in random order (gain: over random order).</p>"
            )
        if len(self.out):
            known = self.out[self.out["status"] != "no sites"].drop(columns="status")
            parts.append(
                f"<details><summary>Per-TF numbers of the known TFs ({len(known)} rows)</summary>"
                f"{table_html(known)}</details>"
            )
        parts.append("</section>")
        return "".join(parts)
