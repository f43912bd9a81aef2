"""The report's genome browser: igv.js (vendored, ``lrp/report/data/igv.min.js``) with its data embedded.

A browser opening ``report.html`` over ``file://`` may not fetch other files, so everything the view shows is
inlined: the reference as a gzipped FASTA ``data:`` URI of slices (``>chr:from-to @len=SIZE``, the form igv.js
reads for igv-reports), relevance as ``wig`` features and the motif calls and known sites as annotation
features, decoded by a short script. Only the explained regions are embedded, at most ``max_bases`` bases:
merged regions are cut into 10 kb chunks and those holding the top loci are kept first. Relevance is
quantised to int16 per track and embedded at base resolution within ``detail_flank`` bp of the top loci and
in bins elsewhere, sized so that all tracks hold at most ``max_values`` values (each bin keeps its value of
largest magnitude, so a one-base peak stays visible). Annotations keep their ``max_features`` strongest items
per track.

The top loci (strongest calls over all methods, merged when they overlap) are a list of links
``#locus=chr:start-end``; the page follows the URL hash, so a locus can also be opened from outside.
``window.plrpIgv`` exposes ``ready`` (a promise), ``browser``, ``goto(locus)``, ``idle()`` (no track
loading) and ``geometry(name)`` (a track's screen box and the view's ``chr``, ``start``, ``bpPerPixel``)
for tests.
"""

import base64
import gzip
import html
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lrp.core.errors import input_error

log = logging.getLogger("plrp")

DATA = Path(__file__).parent / "data"
IGV_JS = DATA / "igv.min.js"
IGV_VERSION = "3.8.10"
CHUNK = 10_000  # bp: the unit in which long regions are kept or dropped
NA = -32768  # int16 code of "no value"


# --------------------------------------------------------------------------------------------- inputs
def merge_intervals(df, gap=0):
    """Sorted, merged ``chrom, start, end`` (intervals closer than ``gap`` bp joined)."""
    if not len(df):
        return pd.DataFrame({"chrom": [], "start": [], "end": []}).astype(
            {"start": int, "end": int}
        )
    out = []
    for chrom, g in df.sort_values(["chrom", "start"]).groupby("chrom", sort=False):
        s, e = g["start"].to_numpy(np.int64), g["end"].to_numpy(np.int64)
        reach = np.maximum.accumulate(e)
        new = np.concatenate([[True], s[1:] > reach[:-1] + gap])
        idx = np.flatnonzero(new)
        ends = np.maximum.reduceat(e, idx)
        out.append(pd.DataFrame({"chrom": chrom, "start": s[idx], "end": ends}))
    return pd.concat(out, ignore_index=True)


def _no_features(path):
    """True when a BED holds only blank, comment, ``track`` and ``browser`` lines."""
    from lrp.genomics.regions import SKIP_PREFIXES

    with open(path, encoding="utf-8", errors="replace") as handle:
        return all(not line.strip() or line.startswith(SKIP_PREFIXES) for line in handle)


def read_features(path, sizes):
    """A BED (3-9 columns) or bigBed -> DataFrame chrom, start, end, name, score, strand, itemRgb; no rows
    for a bigBed without records or a BED without features (a method with zero calls)."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, None, "track file not found", "run the step that makes it first")
    with open(path, "rb") as handle:
        head = int.from_bytes(handle.read(4), "little")
    if head in (0x8789F2EB, 0xEBF28987):
        from lrp.report.hub import bigbed_records

        rows = [(c, s, e, *f[:6]) for c, s, e, f in bigbed_records(path)]
        cols = ["chrom", "start", "end", "name", "score", "strand", "thickStart", "thickEnd"]
        width = max((len(r) for r in rows), default=3)
        df = pd.DataFrame(rows, columns=(cols + ["itemRgb"])[:width])
    elif _no_features(path):  # e.g. the calls.bed of a method with no calls: only its track line
        df = pd.DataFrame({"chrom": [], "start": [], "end": []})
    else:
        from lrp.genomics.regions import read_bed

        df = read_bed(path, sizes, what="features")
    for col, default in (("name", "."), ("score", 0), ("strand", "."), ("itemRgb", "0")):
        if col not in df:
            df[col] = default
    df["score"] = pd.to_numeric(df["score"], errors="coerce").fillna(0.0)
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    return df[["chrom", "start", "end", "name", "score", "strand", "itemRgb"]].reset_index(
        drop=True
    )


def bigwig_coverage(path):
    """Merged covered intervals of a bigWig (a fallback when no region table is given)."""
    import pyBigWig

    bw = pyBigWig.open(str(path))
    try:
        rows = []
        for chrom in bw.chroms():
            iv = bw.intervals(chrom) or []
            rows += [(chrom, int(s), int(e)) for s, e, _ in iv]
    finally:
        bw.close()
    return merge_intervals(pd.DataFrame(rows, columns=["chrom", "start", "end"]))


def top_loci(calls, known=None, n=20):
    """Strongest calls over all methods, overlapping ones merged -> DataFrame chrom, start, end, score,
    names, methods, known (overlaps a known site); best first, at most ``n``."""
    frames = [df.assign(method=name) for name, df in calls if len(df)]
    if not frames or n <= 0:
        return pd.DataFrame(columns=["chrom", "start", "end", "score", "names", "methods", "known"])
    df = pd.concat(frames, ignore_index=True).sort_values(["chrom", "start"])
    rows = []
    for chrom, g in df.groupby("chrom", sort=False):
        s, e = g["start"].to_numpy(), g["end"].to_numpy()
        reach = np.maximum.accumulate(e)
        group = np.cumsum(np.concatenate([[True], s[1:] >= reach[:-1]]))
        for _, m in g.groupby(group):
            best = m.sort_values("score", ascending=False)
            rows.append(
                {
                    "chrom": chrom,
                    "start": int(m["start"].min()),
                    "end": int(m["end"].max()),
                    "score": float(m["score"].max()),
                    "n": len(m),
                    "names": ", ".join(dict.fromkeys(best["name"].astype(str))),
                    "methods": ", ".join(dict.fromkeys(best["method"].astype(str))),
                }
            )
    loci = pd.DataFrame(rows).sort_values(["score", "n"], ascending=False, kind="stable").head(n)
    hit = []
    for r in loci.itertuples():
        k = known[known["chrom"] == r.chrom] if known is not None else None
        hit.append(bool(k is not None and ((k["start"] < r.end) & (k["end"] > r.start)).any()))
    return loci.assign(known=hit).drop(columns="n").reset_index(drop=True)


def choose_spans(spans, loci, max_bases, chunk=CHUNK):
    """Cut ``spans`` into ``chunk`` pieces; keep the pieces of the top loci (in rank order), then the
    rest in genome order, up to ``max_bases``; merged again."""
    pieces = []
    for r in spans.itertuples(index=False):
        for a in range(int(r.start), int(r.end), chunk):
            pieces.append((r.chrom, a, min(int(r.end), a + chunk)))
    pieces = pd.DataFrame(pieces, columns=["chrom", "start", "end"])
    if pieces.empty:
        return pieces
    if int((pieces["end"] - pieces["start"]).sum()) <= max_bases:
        return merge_intervals(pieces)
    order = []
    for r in loci.itertuples(index=False):
        hit = (pieces["chrom"] == r.chrom) & (pieces["start"] < r.end) & (pieces["end"] > r.start)
        order += np.flatnonzero(hit).tolist()
    order = list(dict.fromkeys(order + list(range(len(pieces)))))
    size = (pieces["end"] - pieces["start"]).to_numpy()[order]
    keep = np.asarray(order)[np.cumsum(size) <= max_bases]
    return merge_intervals(pieces.iloc[np.sort(keep)])


def clip_to(df, spans):
    """Intersection of intervals ``df`` with ``spans`` (both merged)."""
    rows = []
    for r in df.itertuples(index=False):
        for s in spans[spans["chrom"] == r.chrom].itertuples(index=False):
            a, b = max(int(r.start), int(s.start)), min(int(r.end), int(s.end))
            if b > a:
                rows.append((r.chrom, a, b))
    return pd.DataFrame(rows, columns=["chrom", "start", "end"])


def overlapping(df, spans):
    """Rows of ``df`` overlapping any of ``spans``."""
    keep = np.zeros(len(df), bool)
    for r in spans.itertuples(index=False):
        keep |= (
            (df["chrom"].to_numpy() == r.chrom)
            & (df["start"].to_numpy() < r.end)
            & (df["end"].to_numpy() > r.start)
        )
    return df[keep]


# --------------------------------------------------------------------------------------------- encoding
def fasta_data_uri(fasta, spans, sizes):
    """Gzipped FASTA of the span sequences as a ``data:`` URI igv.js reads (``@len`` slices)."""
    from lrp.genomics.genome import open_fasta

    fa = open_fasta(fasta)
    lines = []
    for r in spans.itertuples(index=False):
        seq = str(fa[r.chrom][int(r.start) : int(r.end)])
        lines.append(f">{r.chrom}:{int(r.start) + 1}-{int(r.end)} @len={sizes[r.chrom]}")
        lines += [seq[i : i + 100] for i in range(0, len(seq), 100)]
    data = gzip.compress(("\n".join(lines) + "\n").encode("ascii"), mtime=0)
    return "data:application/gzip;base64," + base64.b64encode(data).decode("ascii")


def _peak_bins(v, size):
    """Per bin of ``size`` values, the value of largest magnitude (NaN when the bin has none)."""
    nb = math.ceil(len(v) / size)
    padded = np.full(nb * size, np.nan)
    padded[: len(v)] = v
    m = padded.reshape(nb, size)
    a = np.where(np.isnan(m), -1.0, np.abs(m))
    return m[np.arange(nb), a.argmax(1)]


def _segments(span, detail):
    """``[(start, end, is_detail)]`` covering ``span`` (start, end), split by detail intervals."""
    s0, e0 = span
    out, pos = [], s0
    for a, b in detail:
        a, b = max(a, s0), min(b, e0)
        if b <= a or b <= pos:
            continue
        a = max(a, pos)
        if a > pos:
            out.append((pos, a, False))
        out.append((a, b, True))
        pos = b
    if pos < e0:
        out.append((pos, e0, False))
    return out


def relevance_segments(path, spans, detail, bin_size):
    """Segments ``[chrom, start, end, step, values]`` of a bigWig over ``spans``: base resolution in
    ``detail`` (``{chrom: [(start, end)]}``), ``bin_size`` bins elsewhere; values float64 (NaN: none)."""
    import pyBigWig

    bw = pyBigWig.open(str(path))
    try:
        out = []
        for r in spans.itertuples(index=False):
            s0, e0 = int(r.start), int(r.end)
            if r.chrom not in bw.chroms():
                continue
            vals = np.asarray(bw.values(r.chrom, s0, e0, numpy=True), dtype=np.float64)
            for a, b, fine in _segments((s0, e0), detail.get(r.chrom, [])):
                v = vals[a - s0 : b - s0]
                step = 1 if fine or bin_size == 1 else bin_size
                out.append([r.chrom, a, b, step, v if step == 1 else _peak_bins(v, step)])
    finally:
        bw.close()
    return out


def encode_segments(segments):
    """Quantise to int16 (one scale per track) and base64 -> ``(scale, [[chrom, s, e, step, b64]])``."""
    allv = [s[4][np.isfinite(s[4])] for s in segments]
    top = max((float(np.abs(v).max()) for v in allv if len(v)), default=0.0)
    scale = top / 32767 if top > 0 else 1.0
    out = []
    for chrom, a, b, step, v in segments:
        q = np.full(len(v), NA, dtype="<i2")
        ok = np.isfinite(v)
        q[ok] = np.clip(np.rint(v[ok] / scale), -32767, 32767)
        out.append([chrom, int(a), int(b), int(step), base64.b64encode(q.tobytes()).decode()])
    return scale, out


def view_limits(segments, percentile=99.9):
    """``(lo, hi)``: +-the percentile of |value| over the embedded values (lo = 0 when none < 0)."""
    v = np.concatenate([s[4][np.isfinite(s[4])] for s in segments] or [np.zeros(0)])
    if not len(v):
        return 0.0, 1.0
    hi = float(np.percentile(np.abs(v), percentile)) or float(np.abs(v).max()) or 1.0
    return (-hi if v.min() < 0 else 0.0), hi


def _rgb(item_rgb, name):
    """``rgb(R,G,B)`` of a BED itemRgb; the TF colour of ``name`` when it has none (``0``, ``.``)."""
    from lrp.report.colours import tf_colour

    parts = str(item_rgb).split(",")
    ok = len(parts) == 3 and all(p.strip().isdigit() for p in parts)
    return f"rgb({item_rgb if ok else tf_colour(name)})"


def feature_rows(df, chrom_index, max_features):
    """Compact features ``[chrom_index, start, end, name, score, strand, colour]``, strongest first cut."""
    if len(df) > max_features:
        df = df.sort_values("score", ascending=False, kind="stable").head(max_features)
    df = df.sort_values(["chrom", "start"], kind="stable")
    return [
        [
            chrom_index[r.chrom],
            int(r.start),
            int(r.end),
            str(r.name),
            float(r.score),
            str(r.strand),
            _rgb(r.itemRgb, r.name),
        ]
        for r in df.itertuples(index=False)
    ]


# --------------------------------------------------------------------------------------------- view
def build_view(
    fasta,
    bigwigs=(),
    calls=(),
    known_sites=None,
    regions=None,
    top=20,
    max_bases=2_000_000,
    max_values=1_000_000,
    max_features=20_000,
    detail_flank=250,
    genome_name="genome",
):
    """The data of the view (a JSON-able dict). ``bigwigs``/``calls``: ``[(name, path)]``."""
    from lrp.genomics.genome import chrom_sizes
    from lrp.report.colours import lighter, method_colour

    sizes = chrom_sizes(fasta)
    call_dfs = [(name, read_features(p, sizes)) for name, p in calls]
    known = read_features(known_sites, sizes) if known_sites else None
    if regions:
        from lrp.genomics.regions import read_bed

        spans = merge_intervals(read_bed(regions, sizes)[["chrom", "start", "end"]])
    elif bigwigs:
        spans = bigwig_coverage(bigwigs[0][1])
    else:
        spans = merge_intervals(pd.concat([d for _, d in call_dfs] or [pd.DataFrame()]))
    odd = spans["chrom"].astype(str).str.contains(":")
    if odd.any():  # igv.js reads the slice headers as NAME:FROM-TO
        log.warning("igv view: %d regions on contigs with ':' in the name left out", int(odd.sum()))
        spans = spans[~odd]
    loci = top_loci(call_dfs, known, n=max(top * 5, top))
    spans = choose_spans(spans, loci, max_bases)
    if spans.empty:
        raise input_error(regions or fasta, None, "nothing to show", "give regions or tracks")
    loci = overlapping(loci, spans).head(top).reset_index(drop=True)
    chroms = list(dict.fromkeys(spans["chrom"]))
    chrom_index = {c: i for i, c in enumerate(chroms)}
    flanked = loci[["chrom", "start", "end"]].assign(
        start=loci["start"] - detail_flank, end=loci["end"] + detail_flank
    )
    flanked = clip_to(merge_intervals(flanked), spans)
    detail = {c: list(zip(g["start"], g["end"])) for c, g in flanked.groupby("chrom")}
    bases = int((spans["end"] - spans["start"]).sum())
    fine = int((flanked["end"] - flanked["start"]).sum())
    n = max(1, len(bigwigs))
    budget = max(max_values - n * fine, max_values // 10)
    bin_size = max(1, math.ceil(n * (bases - fine) / budget))
    wigs = []
    for i, (name, path) in enumerate(bigwigs):
        segs = relevance_segments(path, spans, detail, bin_size)
        lo, hi = view_limits(segs)
        scale, enc = encode_segments(segs)
        colour = method_colour(i)
        wigs.append(
            {
                "name": name,
                "color": f"rgb({colour})",
                "altColor": f"rgb({lighter(colour)})",
                "min": lo,
                "max": hi,
                "scale": scale,
                "segments": enc,
            }
        )
    annotations = [
        {
            "name": f"{name} calls",
            "features": feature_rows(overlapping(df, spans), chrom_index, max_features),
        }
        for name, df in call_dfs
    ]
    if known is not None:
        annotations.append(
            {
                "name": "known sites",
                "features": feature_rows(overlapping(known, spans), chrom_index, max_features),
            }
        )
    first = spans.iloc[0]
    locus_list = []
    for r in loci.itertuples(index=False):
        mid, half = (r.start + r.end) // 2, max(100, (r.end - r.start))
        lo, hi = max(0, mid - half), min(sizes[r.chrom], mid + half)
        locus_list.append(
            {
                "locus": f"{r.chrom}:{lo + 1}-{hi}",
                "site": f"{r.chrom}:{r.start + 1}-{r.end}",
                "names": r.names,
                "methods": r.methods,
                "score": r.score,
                "known": r.known,
            }
        )
    default = (
        locus_list[0]["locus"]
        if locus_list
        else f"{first.chrom}:{int(first.start) + 1}-{min(int(first.end), int(first.start) + 2000)}"
    )
    return {
        "genome": genome_name,
        "chroms": chroms,
        "fasta": fasta_data_uri(fasta, spans, sizes),
        "locus": default,
        "wigs": wigs,
        "annotations": annotations,
        "loci": locus_list,
        "bin": bin_size,
        "bases": bases,
        "detail_flank": detail_flank,
    }


SCRIPT = r"""
(function () {
  const status = document.getElementById("plrp-igv-status");
  const api = window.plrpIgv = {browser: null, errors: []};
  async function gunzip(id) {  // a gzipped, base64 <script> body -> text
    const b64 = document.getElementById(id).textContent.trim();
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }
  function decode(b64) {
    const s = atob(b64), bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return new Int16Array(bytes.buffer);
  }
  function wigFeatures(t) {
    const out = [];
    for (const [chr, start, end, step, b64] of t.segments) {
      const q = decode(b64);
      let cur = null;
      for (let i = 0; i < q.length; i++) {
        const s = start + i * step, e = Math.min(end, s + step);
        if (q[i] === -32768) { cur = null; continue; }
        if (cur && cur.q === q[i] && cur.end === s) { cur.end = e; continue; }
        cur = {chr: chr, start: s, end: e, value: q[i] * t.scale, q: q[i]};
        out.push(cur);
      }
    }
    return out;
  }
  function hashLocus() {
    const m = /(?:^#|&)locus=([^&]+)/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }
  api.goto = locus => api.browser.search(locus);
  api.idle = () => api.browser.trackViews.every(v => v.viewports.every(p => !p.isLoading()));
  api.geometry = name => {
    const tv = api.browser.trackViews.find(v => v.track.name === name);
    const box = tv.viewports[0].viewportElement.getBoundingClientRect();
    const f = api.browser.referenceFrameList[0];
    return {left: box.left, top: box.top, width: box.width, height: box.height,
            chr: f.chr, start: f.start, bpPerPixel: f.bpPerPixel};
  };
  async function start() {
    const lib = document.createElement("script");
    lib.textContent = await gunzip("plrp-igv-js");
    document.head.appendChild(lib);  // an inline script runs at once: defines window.igv
    const D = JSON.parse(await gunzip("plrp-igv-data"));
    const tracks = D.wigs.map(t => ({name: t.name, type: "wig", features: wigFeatures(t),
      color: t.color, altColor: t.altColor, min: t.min, max: t.max, autoscale: false, height: 60}));
    for (const a of D.annotations) {
      tracks.push({name: a.name, type: "annotation", displayMode: "EXPANDED", height: 40,
        features: a.features.map(f => ({chr: D.chroms[f[0]], start: f[1], end: f[2], name: f[3],
          score: f[4], strand: f[5], color: f[6]}))});
    }
    const config = {
      reference: {id: D.genome, name: D.genome, fastaURL: D.fasta},
      loadDefaultGenomes: false, locus: hashLocus() || D.locus, tracks: tracks,
      showCytobandView: false, queryParametersSupported: false
    };
    const b = await igv.createBrowser(document.getElementById("plrp-igv"), config);
    api.browser = b;
    window.addEventListener("hashchange", () => { const l = hashLocus(); if (l) b.search(l); });
    for (const a of document.querySelectorAll("#plrp-igv-loci a")) {
      a.addEventListener("click", ev => {  // also when the hash is already this locus
        ev.preventDefault();
        history.replaceState(null, "", a.getAttribute("href"));
        b.search(hashLocus());
        document.getElementById("plrp-igv").scrollIntoView({block: "nearest"});
      });
    }
    status.textContent = "ready: " + tracks.length + " tracks";
    status.dataset.state = "ready";
    return b;
  }
  api.ready = start().catch(err => {
    status.textContent = "igv.js failed: " + err;
    status.dataset.state = "error";
    console.error("plrp igv view:", err);
    throw err;
  });
})();
"""

CSS = """
#plrp-igv { border: 1px solid #ccc; margin: .5em 0; min-height: 200px; }
#plrp-igv-loci td, #plrp-igv-loci th { font-size: 0.85em; } #plrp-igv-status { color: #777; }
"""


def _gzip_b64(text):
    """``text`` gzipped (level 9, no timestamp) and base64-encoded."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), 9, mtime=0)).decode("ascii")


def licence_header():
    """The leading comment of the vendored igv.min.js (version, licence), kept readable in the page."""
    js = IGV_JS.read_text(encoding="utf-8")
    return js[: js.index("*/") + 2] if js.startswith("/*") else ""


def view_html(view):
    """The report section: the igv.js view, its data and the top-loci list.

    igv.js and the view's data are embedded gzipped and base64-encoded (``<script
    type="application/gzip+base64">``, unpacked in the page by ``DecompressionStream``): about a third
    of their plain size; igv.js's licence header stays readable."""
    js = IGV_JS.read_text(encoding="utf-8")
    rows = "".join(
        f'<tr><td><a href="#locus={html.escape(r["locus"])}">{html.escape(r["site"])}</a></td>'
        f"<td>{html.escape(r['names'])}</td><td>{html.escape(r['methods'])}</td>"
        f"<td>{r['score']:.0f}</td><td>{'yes' if r['known'] else 'no'}</td></tr>"
        for r in view["loci"]
    )
    loci = (
        '<div class="scroll"><table id="plrp-igv-loci"><thead><tr><th>top locus</th><th>calls</th><th>methods</th>'
        f"<th>score</th><th>known site</th></tr></thead><tbody>{rows}</tbody></table></div>"
        if rows
        else '<p class="missing">no motif calls to list</p>'
    )
    note = (
        f"<p>igv.js {IGV_VERSION}, offline. Embedded: {view['bases']:,} bp of the explained regions; "
        f"relevance per base within {view['detail_flank']} bp of the top loci, elsewhere in "
        f"{view['bin']} bp bins (the value of largest magnitude). Click a top locus (listed below the view) to jump to it. "
        '<span id="plrp-igv-status" data-state="loading">loading...</span></p>'
    )
    return (
        f'<style>{CSS}</style>\n{note}\n<div id="plrp-igv"></div>\n{loci}\n'
        f"<script>{licence_header()}</script>\n"
        f'<script type="application/gzip+base64" id="plrp-igv-data">{_gzip_b64(json.dumps(view, separators=(",", ":")))}'
        "</script>\n"
        f'<script type="application/gzip+base64" id="plrp-igv-js">{_gzip_b64(js)}</script>\n'
        f"<script>{SCRIPT}</script>"
    )
