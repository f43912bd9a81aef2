"""Motif calls: seqlets -> genome coordinates -> duplicates merged -> TOMTOM labels -> BED9, TSV, bigBed.

CLI::

    plrp call-motifs --relevance R.npz --regions regions.bed --motif-db db.meme --fasta genome.fa \\
        --out-bed calls.bed --out-tsv calls.tsv --out-bigbed calls.bb \\
        --null-relevance null_relevance.npz [--fdr 0.05 --max-q 0.05]

Seqlets: the recursive caller proposes spans (:func:`lrp.motifs.seqlets.call_seqlets`, its ``threshold`` a rank
score) and :func:`lrp.motifs.null.filter_seqlets` keeps those that pass a null at the target FDR ``fdr``: one
error rate for every method. The null is the method's own relevance on dinucleotide-shuffled windows
(``null="shuffled"``, the default; ``plrp null-relevance`` computes it) or a Laplace fitted to its window sums
(``null="laplace"``). The derived threshold is logged and written per call (``null_threshold``, with the
tested ``window_score``).

TOMTOM query: the **one-hot sequence of the seqlet span**, as tangermeme's ``annotate_seqlets`` does, not the
relevance-weighted CWM. memelite's TOMTOM scores a column pair by minus their Euclidean distance, so the query
must be on the PFM's probability scale: a CWM column (relevance units, arbitrary and method dependent) would
make the label depend on the relevance scale, and PLRP's many exactly-zero columns would become all-zero
columns that penalise informative database columns. Relevance already chose the span (the seqlet), and the
one-hot of that span is the observed site; relevance-weighted CWMs are what ``lrp.motifs.learned`` aggregates.

q-value: per seqlet, Benjamini-Hochberg over its TOMTOM p-values against every database motif; a call is
labelled with its best match's TF name when ``q <= max_q``, else ``unknown``.

Equivalent matches: a short site matches several database motifs about equally well (JASPAR holds many
near-identical matrices of one family: the ETS factors, the E-box bHLH factors, GATA1/GATA2...), so the best
match among them is close to arbitrary. ``matches`` lists every TF whose motif the call matches with
``q <= max_q`` (best first; the name is its first entry); the evaluation (``lrp.evaluation.metrics.call_accuracy``)
counts a labelled call on a site of TF T as correct when T is among them.
"""

import inspect
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_open
from lrp.core.errors import input_error
from lrp.motifs import null as N
from lrp.motifs.seqlets import ProjectedRows, call_seqlets
from lrp.motifs.stats import bh_q

log = logging.getLogger("plrp")

UNKNOWN = "unknown"
QUERY_ROWS = 4096  # calls whose window rows are read at a time
BED9 = [
    "chrom",
    "start",
    "end",
    "name",
    "score",
    "strand",
    "thickStart",
    "thickEnd",
    "itemRgb",
]
TSV_COLUMNS = BED9[:6] + [
    "region",
    "region_index",
    "row",
    "window_start",
    "window_end",
    "sign",
    "attribution",
    "seqlet_p",
    "window_score",
    "null_threshold",
    "match_id",
    "match_name",
    "tomtom_p",
    "q",
    "matches",
    "match_strand",
    "match_offset",
    "n_windows",
    "sequence",
]


def tomtom_best(queries, pfms, n_jobs=-1, chunk=256, max_q=None):
    """Best TOMTOM match of each ``(4, w)`` query against ``pfms``.

    Returns a DataFrame ``match_idx`` (-1 when the query is empty), ``tomtom_p``, ``q`` (BH over the
    database), ``match_strand`` (``+``/``-``: the strand of the database motif that matched),
    ``match_offset``; with ``max_q``, also ``significant``: per query the database indices with
    ``q <= max_q``, best (smallest p) first.
    """
    from memelite import tomtom

    n = len(queries)
    out = pd.DataFrame(
        {
            "match_idx": np.full(n, -1, np.int64),
            "tomtom_p": np.full(n, np.nan),
            "q": np.full(n, np.nan),
            "match_strand": np.full(n, ".", object),
            "match_offset": np.zeros(n, np.int64),
        }
    )
    significant = [np.zeros(0, np.int64) for _ in range(n)]
    ok = [i for i, q in enumerate(queries) if q.shape[1] > 0 and np.abs(q).sum() > 0]
    targets = [np.ascontiguousarray(p, dtype=np.float64) for p in pfms]
    for c in range(0, len(ok), chunk):
        idx = ok[c : c + chunk]
        qs = [np.asfortranarray(queries[i], dtype=np.float64) for i in idx]
        res = tomtom(qs, targets, n_jobs=n_jobs)  # (5, nQ, nT): p, score, offset, overlap, strand
        best = np.argmin(res[0], axis=1)
        rows = np.arange(len(idx))
        out.loc[idx, "match_idx"] = best
        out.loc[idx, "tomtom_p"] = res[0, rows, best]
        q = bh_q(res[0])  # every match's q; the best match's is the row's smallest
        out.loc[idx, "q"] = q.min(axis=1)
        out.loc[idx, "match_strand"] = np.where(res[4, rows, best] > 0, "-", "+")
        out.loc[idx, "match_offset"] = res[2, rows, best].astype(np.int64)
        if max_q is not None:
            for k, i in enumerate(idx):
                hits = np.flatnonzero(q[k] <= max_q)
                significant[i] = hits[np.argsort(res[0, k, hits], kind="stable")]
    if max_q is not None:
        out["significant"] = significant
    return out


def check_regions(regions, index, L, path):
    """Check that every row in ``index`` is a region of exactly ``L`` bp."""
    index = np.asarray(index, dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= len(regions)):
        raise input_error(
            path,
            None,
            f"relevance index up to {index.max()} but {len(regions)} regions",
            "use the region table the relevance was computed on",
        )
    width = (regions["end"] - regions["start"]).to_numpy()[index]
    if len(width) and (width != L).any():
        bad = int(index[np.flatnonzero(width != L)[0]])
        raise input_error(
            path,
            f"region {bad}",
            f"{width[width != L][0]} bp, the relevance has L={L}",
            "use the region table the relevance was computed on",
        )


# --------------------------------------------------------------------------------------------- calls
def to_genome(seqlets, index, regions):
    """Seqlets in window coordinates -> genome coordinates.

    ``seqlets.example_idx`` is a row of the relevance arrays, ``index[row]`` its region. Adds ``chrom``,
    ``start``/``end`` (genome), ``window_start``/``window_end``, ``row``, ``region_index``, ``region``.
    """
    rows = seqlets["example_idx"].to_numpy(np.int64)
    reg = np.asarray(index, dtype=np.int64)[rows]
    r = regions.iloc[reg]
    out = pd.DataFrame(
        {
            "chrom": r["chrom"].astype(str).to_numpy(),
            "start": r["start"].to_numpy(np.int64) + seqlets["start"].to_numpy(np.int64),
            "end": r["start"].to_numpy(np.int64) + seqlets["end"].to_numpy(np.int64),
            "region": r["name"].astype(str).to_numpy(),
            "region_index": reg,
            "row": rows,
            "window_start": seqlets["start"].to_numpy(np.int64),
            "window_end": seqlets["end"].to_numpy(np.int64),
            "sign": seqlets["sign"].to_numpy(np.int8),
            "attribution": seqlets["attribution"].to_numpy(np.float64),
            "seqlet_p": seqlets["p_value"].to_numpy(np.float64),
        }
    )
    for key in ("window_score", "null_threshold"):
        out[key] = seqlets[key].to_numpy(np.float64) if key in seqlets else np.nan
    return out


def merge_duplicates(calls, tmpdir=None):
    """One call per site seen from several overlapping windows; keeps the strongest.

    Calls of the same sign from *different* windows that overlap (pybedtools ``intersect``) are the same
    site; greedily by ``|attribution|``, a call is dropped when it overlaps a kept call of another window.
    Calls within one window never overlap (the seqlet caller forbids it). Adds ``n_windows``.
    """
    import pybedtools

    calls = calls.reset_index(drop=True)
    n = len(calls)
    if n == 0:
        return calls.assign(n_windows=np.array([], np.int64))
    own = tmpdir is None
    tmpdir = Path(tempfile.mkdtemp(prefix="plrp-bedtools.")) if own else Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    # set_tempdir sets tempfile.tempdir for the whole process: restore it, the job-local dir goes away.
    previous = tempfile.tempdir
    pybedtools.helpers.set_tempdir(str(tmpdir))
    try:
        bed = pd.DataFrame(
            {
                "chrom": calls["chrom"],
                "start": calls["start"],
                "end": calls["end"],
                "name": np.arange(n),
                "score": calls["region_index"],
                "strand": np.where(calls["sign"] > 0, "+", "-"),
            }
        )
        bt = pybedtools.BedTool.from_dataframe(bed).sort()
        hits = bt.intersect(bt, wa=True, wb=True, s=True)
        pairs = np.array(
            [(int(f[3]), int(f[9])) for f in (h.fields for h in hits) if f[4] != f[10]],
            dtype=np.int64,
        ).reshape(-1, 2)
    finally:
        pybedtools.helpers.cleanup(remove_all=True)
        tempfile.tempdir = previous
        if own:
            shutil.rmtree(tmpdir, ignore_errors=True)
    partners = [[] for _ in range(n)]
    for a, b in pairs:
        partners[a].append(b)
    order = np.lexsort((calls["seqlet_p"].to_numpy(), -calls["attribution"].abs().to_numpy()))
    keeper = np.full(n, -1, np.int64)
    for i in order:
        kept = [j for j in partners[i] if keeper[j] == j]
        keeper[i] = kept[0] if kept else i
    keep = keeper == np.arange(n)
    n_windows = np.bincount(keeper, minlength=n)
    out = calls[keep].assign(n_windows=n_windows[keep])
    log.info("calls: %d seqlets -> %d sites after merging overlapping windows", n, keep.sum())
    return out.reset_index(drop=True)


def spans(arrays, rows, starts, ends, block=QUERY_ROWS):
    """``arrays[r, :, s:e]`` as float64 ``(4, e - s)`` for each ``(r, s, e)``, reading ``block`` calls' rows
    at a time (``arrays``: ``(N, 4, L)``, an array or :class:`lrp.genomics.store.NpyRows`)."""
    rows = np.asarray(rows, dtype=np.int64)
    out = []
    for lo in range(0, len(rows), block):
        r = rows[lo : lo + block]
        unique = np.unique(r)
        got = arrays[unique]
        where = np.searchsorted(unique, r)
        out += [
            np.asarray(got[w, :, s:e], dtype=np.float64)
            for w, s, e in zip(where, starts[lo : lo + block], ends[lo : lo + block])
        ]
    return out


def annotate(calls, ohe, db, max_q=0.05, n_jobs=-1):
    """TOMTOM-label each call with the one-hot of its window span; adds match and BED name fields."""
    ids, names, pfms = db
    queries = spans(
        ohe,
        calls["row"].to_numpy(),
        calls["window_start"].to_numpy(np.int64),
        calls["window_end"].to_numpy(np.int64),
    )
    m = tomtom_best(queries, pfms, n_jobs=n_jobs, max_q=max_q)
    idx = m["match_idx"].to_numpy()
    names_arr = np.array(names, object)
    has = idx >= 0
    calls = calls.assign(
        match_id=np.where(has, np.array(ids, object)[np.maximum(idx, 0)], ""),
        match_name=np.where(has, np.array(names, object)[np.maximum(idx, 0)], ""),
        tomtom_p=m["tomtom_p"].to_numpy(),
        q=m["q"].to_numpy(),
        # unique TF names in order of p (a TF may have several matrices)
        matches=[",".join(dict.fromkeys(names_arr[h])) for h in m["significant"]],
        match_strand=m["match_strand"].to_numpy(),
        match_offset=m["match_offset"].to_numpy(),
    )
    from lrp.genomics.genome import decode

    calls["sequence"] = [decode(q.astype(np.float32)) if q.shape[1] else "" for q in queries]
    labelled = has & (calls["q"].to_numpy() <= max_q)
    calls["name"] = np.where(labelled, calls["match_name"], UNKNOWN)
    calls["strand"] = np.where(labelled, calls["match_strand"], ".")
    return calls


def finish(calls):
    """BED fields: ``score`` 0-1000 from ``|attribution|`` over this file's maximum; rows sorted."""
    a = calls["attribution"].abs().to_numpy()
    top = a.max() if len(a) else 0.0
    score = np.rint(1000 * a / top).astype(np.int64) if top > 0 else np.zeros(len(a), np.int64)
    calls = calls.assign(score=np.clip(score, 0, 1000))
    calls = calls.sort_values(["chrom", "start", "end", "sign"], kind="stable").reset_index(
        drop=True
    )
    return calls[TSV_COLUMNS]


_SEQLET = {k: p.default for k, p in inspect.signature(call_seqlets).parameters.items()}


def call_motifs(
    store,
    regions,
    db,
    threshold=_SEQLET["threshold"],
    min_len=_SEQLET["min_len"],
    max_len=_SEQLET["max_len"],
    flank=_SEQLET["flank"],
    trim=_SEQLET["trim"],
    merge_gap=_SEQLET["merge_gap"],
    negative=_SEQLET["negative"],
    fdr=N.FDR,
    width=N.WIDTH,
    null=N.NULL,
    null_scores=None,
    max_q=0.05,
    max_seqlets=_SEQLET["max_seqlets"],
    tmpdir=None,
    n_jobs=-1,
    min_target=None,
):
    """Relevance store + region table + motif database -> calls DataFrame (``TSV_COLUMNS``).

    Parameters
    ----------
    store : lrp.genomics.store.RelevanceStore
        One method's relevance (``relevance`` and ``ohe`` ``(N, 4, L)``, read a block of rows at a time, so
        memory does not grow with ``N``), ``index`` ``(N,)`` and, for ``min_target``, ``target`` ``(N,)``.
    regions : pandas.DataFrame
        The region table the store indexes.
    db : tuple
        ``(ids, names, pfms)`` of :func:`lrp.motifs.database.load_motif_db`.
    threshold, min_len, max_len, flank, trim, merge_gap, negative, max_seqlets
        The seqlet caller's settings (:func:`lrp.motifs.seqlets.call_seqlets`, whose defaults these are).
    fdr, width : float, int
        The null's target FDR and window width (:func:`lrp.motifs.null.filter_seqlets`; ``fdr >= 1``: off).
    null : str
        ``shuffled`` (test against ``null_scores``) or ``laplace`` (a null fitted to the method's own
        scores), :data:`lrp.motifs.null.NULLS`.
    null_scores : ndarray (n, L) or None
        The shuffled null: the method's projected relevance on dinucleotide-shuffled windows
        (:func:`lrp.motifs.null.read_null_relevance`); needed when ``null`` is ``shuffled`` and ``fdr < 1``.
    max_q : float
        A call is named after its best database match when TOMTOM's q <= this, else ``unknown``.
    tmpdir : str or None
        Folder for bedtools' temporaries.
    n_jobs : int
        TOMTOM threads (-1: all).
    min_target : float or None
        Call only in windows whose explained output ``f_t(x)`` is at least this, e.g. 0 for a logit: the
        windows the model predicts as bound, as one runs modisco on peaks.
    """
    if null not in N.NULLS:
        raise ValueError(f"null must be one of {', '.join(N.NULLS)}; got {null!r}")
    if null == "shuffled" and fdr < 1 and null_scores is None:
        raise ValueError("the shuffled null needs null_scores (plrp null-relevance), or fdr >= 1")
    scores = ProjectedRows(store.relevance, store.chunk_rows())
    seqlets = call_seqlets(
        scores,
        threshold=threshold,
        min_len=min_len,
        max_len=max_len,
        flank=flank,
        negative=negative,
        max_seqlets=max_seqlets,
        trim=trim,
        merge_gap=merge_gap,
    )
    shuffled = null_scores if null == "shuffled" else None
    seqlets, _ = N.filter_seqlets(scores, seqlets, fdr=fdr, width=width, null_scores=shuffled)
    if min_target is not None:
        keep = np.asarray(store.target)[seqlets["example_idx"].to_numpy()] >= min_target
        seqlets = seqlets[keep].reset_index(drop=True)
    calls = to_genome(seqlets, store.index, regions)
    calls = merge_duplicates(calls, tmpdir=tmpdir)
    calls = annotate(calls, store.ohe, db, max_q=max_q, n_jobs=n_jobs)
    return finish(calls)


# --------------------------------------------------------------------------------------------- output
def bed9(calls, colour):
    """Calls -> BED9 DataFrame (thick = whole call, itemRgb ``colour(name)``, e.g.
    :func:`lrp.report.colours.tf_colour`)."""
    return pd.DataFrame(
        {
            "chrom": calls["chrom"],
            "start": calls["start"],
            "end": calls["end"],
            "name": calls["name"],
            "score": calls["score"],
            "strand": calls["strand"],
            "thickStart": calls["start"],
            "thickEnd": calls["end"],
            "itemRgb": [colour(n) for n in calls["name"]],
        }
    )


def write_bed(path, calls, colour, track_name="motif_calls", description="PLRP motif calls"):
    """Write sorted BED9 (itemRgb ``colour(name)``) with a ``track`` line (``itemRgb="On"``), atomically."""
    df = bed9(calls, colour)
    with atomic_open(path) as handle:
        handle.write(f'track name="{track_name}" description="{description}" itemRgb="On"\n')
        df.to_csv(handle, sep="\t", header=False, index=False)


def write_tsv(path, calls):
    """Write every call field as a TSV with a header, atomically."""
    with atomic_open(path) as handle:
        calls.to_csv(handle, sep="\t", index=False, float_format="%.6g")


def read_calls(path):
    """Read a calls TSV written by :func:`write_tsv`."""
    if not Path(path).is_file():
        raise input_error(path, None, "motif calls TSV not found", "run `plrp call-motifs` first")
    df = pd.read_csv(path, sep="\t", keep_default_na=False, na_values={"tomtom_p": [""], "q": [""]})
    if "matches" in df:
        df["matches"] = df["matches"].astype(str)
    missing = [c for c in ("chrom", "start", "end", "name", "sign") if c not in df]
    if missing:
        raise input_error(path, None, f"missing columns {missing}", "rerun `plrp call-motifs`")
    return df.astype({"chrom": str, "start": np.int64, "end": np.int64, "name": str})


def write_bigbed(path, chrom_sizes, calls, colour):
    """Write the calls' BED9 (itemRgb ``colour(name)``) as a bigBed (``lrp.genomics.tracks.write_bigbed``),
    atomically."""
    from lrp.genomics.tracks import write_bigbed as _write

    _write(path, chrom_sizes, bed9(calls, colour))
