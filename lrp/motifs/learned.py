"""Learned motifs: seqlets aggregated into CWMs and PFMs, written as MEME, with their database matches.

Two aggregators:

- ``anchored`` (default, fast, deterministic): the positive calls labelled with a database motif (TOMTOM
  q <= max-q in ``plrp call-motifs``) are grouped by that motif; each call is aligned to it by the best
  log-odds match of the motif that overlaps the call (either strand), and the aligned windows (motif width
  plus ``flank``) are averaged. Unlabelled calls are counted, not clustered.
- ``modisco``: modisco-lite's TF-MoDISco on the hypothetical scores (de novo; slower, with limits set).
  Sparse relevance (LRP and PLRP of a max-pooled CNN hold exact zeros at most positions) is given a floor
  first: modisco-lite's pattern merging compares seqlets by the continuous Jaccard similarity of their
  L1-normalised snippets, which is ``0 / 0 = NaN`` for two all-zero snippets, and its AUROC then raises
  ``ValueError: Input contains NaN``. Every all-zero column gets a deterministic value of at most
  :data:`FLOOR` times the largest ``|hypothetical|`` (:func:`relevance_floor`), far below any seqlet.

Per motif: CWM = mean relevance ``hypothetical * ohe`` (``(4, w)``), hCWM = mean hypothetical, PFM = base
frequencies (pseudocount 0.01). The MEME file holds PFMs; ``--out-cwm-meme`` the CWMs in MEME layout (signed
values, not probabilities); the ``.npz`` all three. Each learned motif is trimmed to the columns whose
``|CWM|`` reaches ``trim`` of its maximum (plus 2 bp) and matched against the database with TOMTOM.

CLI::

    plrp motifs --relevance R.npz --calls calls.tsv --motif-db db.meme --out-meme motifs.meme \\
        --out-tsv motif_matches.tsv --out-npz motifs.npz [--out-cwm-meme motifs_cwm.meme] \\
        [--method anchored|modisco --min-seqlets 5 --flank 5]
"""

import logging

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_open, atomic_path
from lrp.core.errors import input_error
from lrp.motifs.calls import tomtom_best

log = logging.getLogger("plrp")

PSEUDOCOUNT = 0.01
FLOOR = (
    1e-6  # the floor of all-zero relevance columns for modisco-lite, relative to max |hypothetical|
)
_GOLDEN = 0.6180339887498949
ROWS_PER_READ = 1024  # calls whose window rows anchored_motifs reads at a time
MATCH_COLUMNS = [
    "motif",
    "name",
    "source",
    "n_seqlets",
    "width",
    "consensus",
    "anchor_id",
    "anchor_name",
    "match_id",
    "match_name",
    "tomtom_p",
    "q",
    "match_strand",
    "match_offset",
]


def _rc(a):
    """Reverse complement of ``(4, w)`` (ACGT rows)."""
    return a[::-1, ::-1]


def pfm_from_counts(counts):
    """``(4, w)`` counts -> probabilities with pseudocount ``PSEUDOCOUNT``."""
    c = np.asarray(counts, dtype=np.float64) + PSEUDOCOUNT
    return c / c.sum(0, keepdims=True)


def best_site(ohe, pfm, start, end):
    """Best match of ``pfm (4, w)`` overlapping ``[start, end)`` of ``ohe (4, L)`` -> ``(pos, strand)``.

    Log-odds against a uniform background; ``strand`` is ``+`` or ``-`` (reverse complement of the motif).
    Returns ``(None, None)`` when the motif does not fit in the window.
    """
    w = pfm.shape[1]
    L = ohe.shape[1]
    lo, hi = max(start - w + 1, 0), min(end, L - w + 1)
    if hi <= lo:
        return None, None
    x = np.asarray(ohe, dtype=np.float64)
    best = (-np.inf, None, None)
    for strand, m in (("+", pfm), ("-", _rc(pfm))):
        lod = np.log2(np.asarray(m) + 1e-3) + 2.0
        # score[p] = sum_j lod[:, j] . x[:, p + j]
        win = np.lib.stride_tricks.sliding_window_view(x, w, axis=1)[:, lo:hi]  # (4, n, w)
        score = np.einsum("anw,aw->n", win, lod)
        k = int(np.argmax(score))
        if score[k] > best[0]:
            best = (score[k], lo + k, strand)
    return best[1], best[2]


def _extract(arr, pos, width, flank, strand):
    """``arr (4, L)`` window ``[pos - flank, pos + width + flank)`` zero-padded, on the motif's strand."""
    L = arr.shape[1]
    s, e = pos - flank, pos + width + flank
    out = np.zeros((4, e - s), dtype=np.float64)
    cs, ce = max(s, 0), min(e, L)
    out[:, cs - s : ce - s] = arr[:, cs:ce]
    covered = np.zeros(e - s, dtype=np.float64)
    covered[cs - s : ce - s] = 1
    return (_rc(out), covered[::-1]) if strand == "-" else (out, covered)


def anchored_motifs(arrays, calls, db, min_seqlets=5, flank=5, include_negative=False):
    """Group labelled calls by their database match and average the aligned windows.

    ``arrays``: ``relevance``, ``hypothetical``, ``ohe`` ``(N, 4, L)`` (arrays or the relevance store's
    :class:`lrp.genomics.store.NpyRows`: the rows of ``ROWS_PER_READ`` calls are read at a time);
    ``calls``: calls TSV frame (``row``, ``window_start``, ``window_end``, ``match_id``, ``name``, ``sign``);
    ``db``: ``(ids, names, pfms)``. Returns a list of motif dicts (``cwm``, ``hcwm``, ``pfm`` ``(4, w)``,
    ``n_seqlets``, ``anchor_id``, ``anchor_name``, ``source``).
    """
    ids, _names, pfms = db
    by_id = {m: i for i, m in enumerate(ids)}
    used = calls[(calls["name"] != "unknown") & calls["match_id"].astype(str).isin(by_id)]
    if not include_negative:
        used = used[used["sign"] > 0]
    rel, hyp, ohe = arrays["relevance"], arrays["hypothetical"], arrays["ohe"]
    out = []
    for mid, group in used.groupby("match_id", sort=True):
        if len(group) < min_seqlets:
            continue
        pfm = pfms[by_id[mid]]
        w = pfm.shape[1]
        sums = {k: np.zeros((4, w + 2 * flank)) for k in ("cwm", "hcwm", "seq")}
        cover = np.zeros(w + 2 * flank)
        n = 0
        calls_rows = group[["row", "window_start", "window_end"]].to_numpy(np.int64)
        for lo in range(0, len(calls_rows), ROWS_PER_READ):
            block = calls_rows[lo : lo + ROWS_PER_READ]
            unique = np.unique(block[:, 0])
            rows = {k: a[unique] for k, a in (("cwm", rel), ("hcwm", hyp), ("seq", ohe))}
            for (r, s, e), i in zip(block.tolist(), np.searchsorted(unique, block[:, 0]).tolist()):
                pos, strand = best_site(rows["seq"][i], pfm, s, e)
                if pos is None:
                    continue
                for key, arr in rows.items():
                    part, cov = _extract(
                        np.asarray(arr[i], dtype=np.float64), pos, w, flank, strand
                    )
                    sums[key] += part
                cover += cov
                n += 1
        if n < min_seqlets:
            continue
        denom = np.maximum(cover, 1)[None, :]
        out.append(
            {
                "cwm": sums["cwm"] / denom,
                "hcwm": sums["hcwm"] / denom,
                "pfm": pfm_from_counts(sums["seq"]),
                "n_seqlets": n,
                "anchor_id": str(mid),
                "anchor_name": str(group["name"].iloc[0]),
                "source": "anchored",
            }
        )
    n_unknown = int(((calls["name"] == "unknown") & (calls["sign"] > 0)).sum())
    log.info(
        "motifs: %d anchored motifs; %d positive calls without a label not used",
        len(out),
        n_unknown,
    )
    return out


def relevance_floor(hyp):
    """Give every all-zero column of ``hyp`` ``(N, L, 4)`` a tiny deterministic value, in place.

    The value of entry ``k`` (flat index over the array) is ``(frac(k * golden ratio) - 0.5) * 2 *
    FLOOR * max|hyp|``: no two neighbouring snippets share their pattern, so floor-only snippets are
    dissimilar rather than identical, and no random state is involved. Returns the share of columns
    that were all zero (``0.0``: ``hyp`` unchanged)."""
    zero = ~np.any(hyp != 0, axis=2)  # (N, L)
    share = float(zero.mean()) if zero.size else 0.0
    if share == 0:
        return share
    scale = 2.0 * FLOOR * float(np.abs(hyp).max())
    rows, cols = np.nonzero(zero)
    k = ((rows.astype(np.float64) * hyp.shape[1] + cols) * 4)[:, None] + np.arange(4)
    hyp[rows, cols] = (((k * _GOLDEN) % 1.0 - 0.5) * scale).astype(hyp.dtype)
    return share


def modisco_motifs(
    arrays,
    max_seqlets=2000,
    n_leiden_runs=4,
    window=21,
    flank=10,
    min_seqlets=20,
    min_metacluster=50,
):
    """De novo motifs with modisco-lite (positive and negative patterns), limits set for speed.

    ``arrays``: ``ohe`` and ``hypothetical`` ``(N, 4, L)``. Non-finite relevance raises
    :class:`lrp.core.errors.PlrpError`; relevance that is zero everywhere, or in which modisco-lite finds
    no pattern, gives ``[]`` with a warning saying why. All-zero columns get :func:`relevance_floor`
    (logged). Returns a list of motif dicts as :func:`anchored_motifs`.
    """
    from modiscolite.tfmodisco import TFMoDISco

    ohe = np.asarray(arrays["ohe"], dtype=np.float32).transpose(0, 2, 1)
    hyp = np.array(arrays["hypothetical"], dtype=np.float32).transpose(0, 2, 1)  # a copy: floored
    if ohe.shape[1] < window + 2 * flank:
        raise input_error(
            "modisco",
            None,
            f"windows of {ohe.shape[1]} bp are shorter than {window + 2 * flank}",
            "lower --modisco-window/--flank",
        )
    bad = int(np.size(hyp) - np.count_nonzero(np.isfinite(hyp)))
    if bad:
        raise input_error(
            "modisco",
            "hypothetical",
            f"{bad} non-finite relevance values (NaN or infinity)",
            "recompute the relevance (check the model's outputs on these windows)",
        )
    if not np.any(hyp):
        log.warning(
            "motifs: modisco skipped: the relevance is zero at every position of %d windows, so there "
            "are no seqlets (no relevance to cluster)",
            len(hyp),
        )
        return []
    zero = relevance_floor(hyp)
    if zero:
        log.info(
            "motifs: %.1f%% of positions hold exactly zero relevance; a floor of at most %.2g x max "
            "|relevance| is added there so modisco-lite's seqlet similarities are defined",
            100 * zero,
            FLOOR,
        )
    try:
        pos, neg = TFMoDISco(
            one_hot=ohe,
            hypothetical_contribs=hyp,
            sliding_window_size=window,
            flank_size=flank,
            max_seqlets_per_metacluster=max_seqlets,
            n_leiden_runs=n_leiden_runs,
            min_metacluster_size=min_metacluster,
            final_min_cluster_size=min_seqlets,
            verbose=False,
        )
    except ValueError as err:
        if "NaN" not in str(err):
            raise
        raise input_error(
            "modisco",
            None,
            f"modisco-lite failed on this relevance ({err}) although it is finite and floored",
            "use --method anchored, or report the relevance file",
        ) from err
    out = []
    for sign, patterns in (("pos", pos), ("neg", neg)):
        for k, p in enumerate(patterns or []):
            out.append(
                {
                    "cwm": np.asarray(p.contrib_scores, np.float64).T,
                    "hcwm": np.asarray(p.hypothetical_contribs, np.float64).T,
                    "pfm": pfm_from_counts(np.asarray(p.sequence, np.float64).T * len(p.seqlets)),
                    "n_seqlets": len(p.seqlets),
                    "anchor_id": "",
                    "anchor_name": "",
                    "source": f"modisco_{sign}_{k}",
                }
            )
    if out:
        log.info("motifs: modisco found %d patterns", len(out))
    else:
        log.warning(
            "motifs: modisco found no pattern in %d windows (too few seqlets above its threshold for "
            "metaclusters of %d and patterns of %d seqlets); lower --min-seqlets or give more windows",
            len(hyp),
            min_metacluster,
            min_seqlets,
        )
    return out


def trim_bounds(cwm, trim=0.3, pad=2):
    """``(start, end)`` of the columns where ``|cwm|`` column sums reach ``trim * max``, padded."""
    imp = np.abs(cwm).sum(0)
    if not len(imp) or imp.max() <= 0:
        return 0, len(imp)
    keep = np.flatnonzero(imp >= trim * imp.max())
    return max(keep[0] - pad, 0), min(keep[-1] + 1 + pad, len(imp))


def match_motifs(motifs, db, trim=0.3, n_jobs=-1):
    """Trim each motif and TOMTOM its PFM against the database -> the MATCH_COLUMNS table."""
    ids, names, _ = db
    for m in motifs:
        s, e = trim_bounds(m["cwm"], trim)
        for key in ("cwm", "hcwm", "pfm"):
            m[key] = m[key][:, s:e]
    res = tomtom_best([m["pfm"] for m in motifs], db[2], n_jobs=n_jobs) if motifs else None
    rows = []
    for k, m in enumerate(motifs):
        r = res.iloc[k]
        j = int(r["match_idx"])
        match_name = names[j] if j >= 0 else ""
        label = m["anchor_name"] or match_name or "motif"
        m["id"], m["name"] = f"plrp_{k}", f"m{k}_{label}"
        rows.append(
            {
                "motif": m["id"],
                "name": m["name"],
                "source": m["source"],
                "n_seqlets": m["n_seqlets"],
                "width": m["pfm"].shape[1],
                "consensus": "".join("ACGT"[i] for i in m["pfm"].argmax(0)),
                "anchor_id": m["anchor_id"],
                "anchor_name": m["anchor_name"],
                "match_id": ids[j] if j >= 0 else "",
                "match_name": match_name,
                "tomtom_p": r["tomtom_p"],
                "q": r["q"],
                "match_strand": r["match_strand"],
                "match_offset": int(r["match_offset"]),
            }
        )
    return pd.DataFrame(rows, columns=MATCH_COLUMNS)


def write_matrices_meme(path, motifs, key="pfm"):
    """MEME v4 text of the motifs' ``key`` matrices (``pfm``: probabilities; ``cwm``: signed), atomic."""
    lines = [
        "MEME version 4",
        "",
        "ALPHABET= ACGT",
        "",
        "strands: + -",
        "",
        "Background letter frequencies",
        "A 0.25 C 0.25 G 0.25 T 0.25",
        "",
    ]
    for m in motifs:
        mat = m[key]
        kind = "letter-probability matrix" if key == "pfm" else f"{key} matrix (not probabilities)"
        lines += [
            f"MOTIF {m['id']} {m['name']}",
            f"{kind}: alength= 4 w= {mat.shape[1]} nsites= {m['n_seqlets']} E= 0",
        ]
        lines += [" ".join(f"{v:.6f}" for v in col) for col in mat.T]
        lines.append("")
    with atomic_open(path) as h:
        h.write("\n".join(lines) + "\n")


def write_npz(path, motifs):
    """``.npz`` with, per motif ``k``: ``cwm_k``, ``hcwm_k``, ``pfm_k`` ``(4, w)``, and ``ids``, ``names``."""
    arrays = {
        "ids": np.array([m["id"] for m in motifs], dtype=str),
        "names": np.array([m["name"] for m in motifs], dtype=str),
        "n_seqlets": np.array([m["n_seqlets"] for m in motifs], dtype=np.int64),
    }
    for k, m in enumerate(motifs):
        for key in ("cwm", "hcwm", "pfm"):
            arrays[f"{key}_{k}"] = m[key].astype(np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as h:
        np.savez(h, **arrays)


def read_npz(path):
    """Read :func:`write_npz` output -> list of motif dicts (``id``, ``name``, ``cwm``, ``hcwm``, ``pfm``)."""
    with np.load(path) as z:
        return [
            {
                "id": str(i),
                "name": str(n),
                "n_seqlets": int(c),
                "cwm": z[f"cwm_{k}"],
                "hcwm": z[f"hcwm_{k}"],
                "pfm": z[f"pfm_{k}"],
            }
            for k, (i, n, c) in enumerate(zip(z["ids"], z["names"], z["n_seqlets"]))
        ]


def write_matches(path, table):
    """The :func:`match_motifs` table as a TSV, atomically."""
    with atomic_open(path) as h:
        table.to_csv(h, sep="\t", index=False, float_format="%.6g")
