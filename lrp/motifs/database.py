"""JASPAR motif selection (pyjaspar, offline) and MEME motif files.

A motif set is an ordered dict ``{name: (4, w) float64 PFM}`` (rows A, C, G, T; each column sums to 1)
plus ``ids`` ``{name: matrix ID}``. In MEME files we write ``MOTIF <ID> <NAME>`` where NAME is the TF name
(what motif calls are labelled with) and ID the JASPAR matrix ID.
"""

import difflib
import functools
import logging
import re
import warnings
from pathlib import Path

import numpy as np

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError, input_error

log = logging.getLogger("plrp")

ALPHABET = "ACGT"
MATRIX_ID = re.compile(r"^[A-Z]{2}\d{4}(\.\d+)?$")
#: tolerance on |column sum - 1| when reading a letter-probability matrix
SUM_TOLERANCE = 0.02


@functools.lru_cache(maxsize=4)
def _open_db(release):
    import pyjaspar

    releases = sorted(pyjaspar.jaspar_releases)
    if release not in releases:
        raise input_error(
            "pyjaspar",
            f"release {release!r}",
            "not shipped with pyjaspar",
            f"use one of {', '.join(releases)}",
        )
    return pyjaspar.jaspardb(release=release)


def _pfm(motif):
    """Bio.motifs JASPAR motif -> (4, w) float64 frequencies."""
    counts = np.array([motif.counts[b] for b in ALPHABET], dtype=np.float64)
    return counts / counts.sum(0, keepdims=True)


def _latest_per_base(motifs):
    """Keep the highest version of each base ID, ordered by matrix ID."""
    best = {}
    for m in motifs:
        if m.base_id not in best or int(m.version) > int(best[m.base_id].version):
            best[m.base_id] = m
    return [best[k] for k in sorted(best)]


def _unique_names(motifs):
    """Matrix objects -> unique names: the first matrix of a name keeps it, later ones get ``_ID``."""
    seen, names = set(), []
    for m in motifs:
        name = re.sub(r"\s+", "_", m.name.strip())
        if name in seen:
            name = f"{name}_{m.matrix_id}"
        seen.add(name)
        names.append(name)
    return names


def select_motifs(release="JASPAR2026", collection="CORE", tax_group="vertebrates", names=None):
    """Select JASPAR matrices offline -> ``(motifs, ids)``.

    ``motifs`` is ``{name: (4, w) float64 PFM}``, ``ids`` is ``{name: matrix ID}``, both in selection order.
    Without ``names`` the whole collection of that taxon (latest version of each matrix, by ID). ``names``
    holds TF names (matched within the taxon: exact case first, then case-insensitive; when several matrices
    share the name, the lowest base ID, i.e. the original one, latest version) or matrix IDs
    (``MA0139`` = latest version, ``MA0139.1`` = that version). Duplicate names become ``NAME_ID``.
    """
    db = _open_db(release)
    where = f"{release} {collection} {tax_group or 'all taxa'}"
    if names is None:
        chosen = _pool(release, collection, tax_group)
    else:
        chosen = [_find(db, query, where, collection, tax_group, release) for query in names]
    if not chosen:
        raise input_error(
            "pyjaspar", where, "no matrices in this selection", "check collection/tax_group"
        )
    unique = _unique_names(chosen)
    motifs = {n: _pfm(m) for n, m in zip(unique, chosen)}
    ids = {n: m.matrix_id for n, m in zip(unique, chosen)}
    log.info("JASPAR %s: selected %d matrices", where, len(motifs))
    return motifs, ids


@functools.lru_cache(maxsize=8)
def _pool(release, collection, tax_group, name=None):
    """Latest versions of the matrices of one collection and taxon (optionally one exact name)."""
    tax = None if tax_group in (None, "", "all") else [tax_group]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyjaspar warns when nothing matches
        found = _open_db(release).fetch_motifs(collection=collection, tax_group=tax, tf_name=name)
    return tuple(_latest_per_base(found))


def _find(db, query, where, collection, tax_group, release):
    query = query.strip()
    if MATRIX_ID.match(query):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = db.fetch_motif_by_id(query)
        if m is None:
            raise input_error(
                "pyjaspar",
                f"{release} matrix {query}",
                "no such matrix ID",
                "check the ID on jaspar.elixir.no",
            )
        if m.tax_group != tax_group and tax_group not in (None, "", "all"):
            log.warning("%s (%s) is in tax group %s, not %s", query, m.name, m.tax_group, tax_group)
        return m
    hits = list(_pool(release, collection, tax_group, query))
    if not hits:
        pool = _pool(release, collection, tax_group)
        hits = [m for m in pool if m.name.upper() == query.upper()]
    if not hits:
        close = difflib.get_close_matches(query, sorted({m.name for m in pool}), n=5, cutoff=0.6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            others = db.fetch_motifs_by_name(query)
        elsewhere = sorted({f"{m.matrix_id} ({m.tax_group})" for m in others})[:5]
        hint = f"close names: {', '.join(close)}" if close else "no close names"
        if elsewhere:
            hint += f"; in other taxa/collections: {', '.join(elsewhere)} (give the matrix ID)"
        raise input_error(
            "pyjaspar",
            where,
            f"no matrix named {query!r} ({hint})",
            "use a JASPAR TF name of this taxon or a matrix ID",
        )
    hits.sort(key=lambda m: m.base_id)
    if len(hits) > 1:
        log.info(
            "JASPAR name %s: %d matrices (%s); using %s (give IDs to choose)",
            query,
            len(hits),
            ", ".join(m.matrix_id for m in hits),
            hits[0].matrix_id,
        )
    return hits[0]


def _clean(token):
    return re.sub(r"\s+", "_", str(token).strip())


def write_meme(path, motifs, ids=None, background=None):
    """Write ``{name: (4, w) PFM}`` as MEME v4 text, atomically.

    Each motif is ``MOTIF ID NAME`` (ID from ``ids`` as a dict ``{name: id}`` or a list in motif order;
    without ids the NAME alone). ``background`` is ACGT frequencies (default uniform).
    """
    names = list(motifs)
    if ids is None:
        id_of = {}
    elif isinstance(ids, dict):
        id_of = dict(ids)
    else:
        ids = list(ids)
        if len(ids) != len(names):
            raise ValueError(f"{len(ids)} ids for {len(names)} motifs")
        id_of = dict(zip(names, ids))
    bg = np.full(4, 0.25) if background is None else np.asarray(background, dtype=np.float64)
    lines = [
        "MEME version 4",
        "",
        f"ALPHABET= {ALPHABET}",
        "",
        "strands: + -",
        "",
        "Background letter frequencies",
        " ".join(f"{b} {f:.6f}" for b, f in zip(ALPHABET, bg)),
        "",
    ]
    for name in names:
        pfm = np.asarray(motifs[name], dtype=np.float64)
        if pfm.ndim != 2 or pfm.shape[0] != 4:
            raise ValueError(f"motif {name}: expected a (4, w) matrix, got {pfm.shape}")
        pfm = pfm / pfm.sum(0, keepdims=True)
        mid = id_of.get(name)
        head = f"MOTIF {_clean(mid)} {_clean(name)}" if mid else f"MOTIF {_clean(name)}"
        lines += [head, f"letter-probability matrix: alength= 4 w= {pfm.shape[1]} nsites= 20 E= 0"]
        lines += [" ".join(f"{v:.6f}" for v in col) for col in pfm.T]
        if mid and MATRIX_ID.match(str(mid)):
            lines.append(f"URL https://jaspar.elixir.no/matrix/{mid}/")
        lines.append("")
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")


def read_meme(path, return_ids=False):
    """Read a MEME file -> ``{name: (4, w) float64 PFM}`` (and ``{name: id}`` with ``return_ids``).

    The key is the motif's NAME (alternate name) when present, else its ID; a repeated key becomes
    ``KEY_ID`` (or ``KEY_2``...). Raises PlrpError naming the file and motif on malformed input.
    """
    path = Path(path)
    if not path.is_file():
        raise input_error(path, None, "MEME file not found", "check the path of the motif database")
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise input_error(path, None, "not a text file", "give a MEME v4 motif file") from err
    alphabet = re.search(r"^ALPHABET\s*=\s*(\S+)", text, re.MULTILINE)
    if alphabet and alphabet.group(1).upper() not in ("ACGT", "DNA"):
        raise input_error(
            path, None, f"alphabet {alphabet.group(1)} is not DNA (ACGT)", "give a DNA motif file"
        )
    motifs, ids = {}, {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("MOTIF"):
            continue
        fields = line.split()[1:]
        if not fields:
            raise input_error(
                path, f"line {i}", "MOTIF line without an identifier", "write 'MOTIF ID [NAME]'"
            )
        mid, label = fields[0], (fields[1] if len(fields) > 1 else fields[0])
        record = f"motif {mid}" + (f" ({label})" if label != mid else "")
        while i < len(lines) and not lines[i].startswith("letter-probability"):
            if lines[i].startswith("MOTIF"):
                break
            i += 1
        if i >= len(lines) or not lines[i].startswith("letter-probability"):
            raise input_error(
                path,
                record,
                "no letter-probability matrix",
                "add 'letter-probability matrix: alength= 4 w= W' and W rows",
            )
        head = lines[i]
        i += 1
        width = re.search(r"\bw=\s*(\d+)", head)
        alength = re.search(r"\balength=\s*(\d+)", head)
        if alength and int(alength.group(1)) != 4:
            raise input_error(
                path, record, f"alength= {alength.group(1)}, not 4", "give DNA motifs"
            )
        if width is not None and int(width.group(1)) == 0:
            raise input_error(
                path,
                record,
                "w= 0: a motif needs at least one position",
                "set w= to the number of matrix rows below it, or remove the motif",
            )
        rows = []
        while i < len(lines) and (width is None or len(rows) < int(width.group(1))):
            stripped = lines[i].strip()
            if not stripped:
                if width is None and rows:
                    break
                i += 1
                continue
            if stripped.startswith(("MOTIF", "URL", "letter")) or not re.match(
                r"^[-+.\d]", stripped
            ):
                break
            try:
                values = [float(v) for v in stripped.split()]
            except ValueError as err:
                raise input_error(
                    path,
                    record,
                    f"row {len(rows) + 1} is not numbers: {stripped!r}",
                    "give 4 probabilities per row",
                ) from err
            if len(values) != 4:
                raise input_error(
                    path,
                    record,
                    f"row {len(rows) + 1} has {len(values)} values, not 4",
                    "give 4 probabilities (A C G T) per row",
                )
            rows.append(values)
            i += 1
        if not rows or (width is not None and len(rows) != int(width.group(1))):
            want = width.group(1) if width else "at least 1"
            raise input_error(
                path,
                record,
                f"{len(rows)} matrix rows, expected {want}",
                "make w= match the number of rows",
            )
        pfm = np.array(rows, dtype=np.float64).T
        sums = pfm.sum(0)
        bad = np.flatnonzero(np.abs(sums - 1) > SUM_TOLERANCE)
        if len(bad) or (pfm < 0).any():
            where = f"row {bad[0] + 1} sums to {sums[bad[0]]:.4g}" if len(bad) else "negative value"
            raise input_error(
                path,
                record,
                f"not a letter-probability matrix: {where}",
                "give probabilities per position that sum to 1 (not counts)",
            )
        key = label
        if key in motifs:
            key = f"{label}_{mid}" if mid != label and f"{label}_{mid}" not in motifs else None
            k = 2
            while key is None or key in motifs:
                key, k = f"{label}_{k}", k + 1
        motifs[key] = pfm
        ids[key] = mid
    if not motifs:
        raise input_error(
            path,
            None,
            "no motif in this file",
            "give a MEME v4 file with 'MOTIF' and 'letter-probability matrix' blocks",
        )
    return (motifs, ids) if return_ids else motifs


def load_motif_db(path):
    """MEME file -> ``(ids, names, pfms)``: matrix IDs, TF names (the NAME field) and ``(4, w)`` PFMs."""
    motifs, ids = read_meme(path, return_ids=True)
    keys = list(motifs)
    mids = [ids[k] for k in keys]
    # read_meme makes repeated names unique as NAME_ID; the TF name is NAME.
    names = [k[: -len(m) - 1] if k.endswith(f"_{m}") and k != m else k for k, m in zip(keys, mids)]
    return mids, names, [np.asarray(motifs[k], dtype=np.float64) for k in keys]


__all__ = ["PlrpError", "load_motif_db", "read_meme", "select_motifs", "write_meme"]
