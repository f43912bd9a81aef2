"""Genome-browser tracks: stitch window values (nearest-centre rule), write bigWig and bigBed.

Overlapping windows of equal length: each base takes its value from the window whose centre is nearest
(ties: the leftmost window), i.e. a centre crop, so every covered base is written exactly once.

The projected score is ``relevance.sum(1)``; rows are read a few at a time with ordinary file reads
(:class:`lrp.genomics.store.NpyRows`, as ``plrp bigwig`` opens the relevance store). The bigWig is written with pybigtools from a generator of
run-length-encoded intervals, so peak memory does not grow with the genome.
"""

import itertools
import logging
import struct

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_path
from lrp.core.errors import PlrpError
from lrp.genomics.store import NpyRows

log = logging.getLogger("plrp")

ROWS_PER_READ = 256  # region rows read from ``values`` at a time
FLUSH_BASES = 1 << 16  # bases of one chromosome stitched before they are run-length encoded
INTERVALS_PER_BLOCK = 1 << 14  # intervals turned into Python tuples at a time

BED9_AUTOSQL = """table bed9
"Browser extensible data, 9 fields"
    (
    string chrom;      "Reference sequence chromosome or scaffold"
    uint   chromStart; "Start position in chromosome"
    uint   chromEnd;   "End position in chromosome"
    string name;       "Name of item"
    uint   score;      "Score from 0-1000"
    char[1] strand;    "+ or - or ."
    uint thickStart;   "Start of where display should be thick"
    uint thickEnd;     "End of where display should be thick"
    uint reserved;     "Used as itemRgb as of 2004-11-22"
    )
"""


def centre_crop(regions):
    """Kept part of each window -> ``(keep_start, keep_end)`` int64 genome coordinates, one per row.

    Windows of one chromosome must share one length ``L``. Between consecutive windows starting at
    ``a < b`` (overlapping), base ``x`` goes to the left window iff ``2x <= a + b + L - 1``. A duplicate
    window keeps nothing (``keep_start == keep_end``); non-overlapping windows keep everything.
    """
    start = regions["start"].to_numpy(np.int64)
    end = regions["end"].to_numpy(np.int64)
    keep_start, keep_end = start.copy(), end.copy()
    if len(start) == 0:
        return keep_start, keep_end
    codes, _ = pd.factorize(regions["chrom"])  # object or category chrom
    order = np.lexsort((start, codes))
    s, e, c = start[order], end[order], codes[order]
    length = e - s
    same = c[1:] == c[:-1]
    if np.any(same & (length[1:] != length[:-1])):
        raise PlrpError("centre_crop: windows on one chromosome must have the same length")
    first = np.concatenate([[True], ~(same & (s[1:] == s[:-1]))])  # duplicates keep nothing
    ks, ke = s.copy(), s.copy()
    us, ue, uc = s[first], e[first], c[first]
    uks, uke = us.copy(), ue.copy()
    a, b, L = us[:-1], us[1:], ue[:-1] - us[:-1]
    overlap = (uc[1:] == uc[:-1]) & (b < a + L)
    mid = (a + b + L - 1) // 2 + 1  # first base that goes to the right window
    uke[:-1] = np.where(overlap, mid, ue[:-1])
    uks[1:] = np.where(overlap, mid, b)
    ks[first], ke[first] = uks, uke
    keep_start[order], keep_end[order] = ks, ke
    return keep_start, keep_end


def _project(block):
    """Rows of values ``(n, L)`` or ``(n, 4, L)`` -> ``(n, L)`` float32."""
    block = np.asarray(block, dtype=np.float32)
    return block.sum(1, dtype=np.float32) if block.ndim == 3 else block


def _take_rows(values, rows):
    """``values[rows]`` for sorted ``rows``; an :class:`NpyRows` reads them with ordinary file reads."""
    if isinstance(values, NpyRows):
        return values.take(rows)
    return values[rows]


def _check_regions(regions, chrom_sizes, values):
    if len(values) != len(regions):
        raise PlrpError(f"{len(values)} value rows for {len(regions)} regions")
    unknown = set(regions["chrom"].unique()) - set(chrom_sizes)
    if unknown:
        raise PlrpError(f"region chromosome {min(map(str, unknown))!r} is not in the genome")
    width = values.shape[-1]
    if np.any(regions["end"].to_numpy() - regions["start"].to_numpy() != width):
        raise PlrpError(f"every region must be {width} bp long (the values' last axis)")
    size = regions["chrom"].map(chrom_sizes).to_numpy(np.int64)
    if np.any(regions["start"].to_numpy() < 0) or np.any(regions["end"].to_numpy() > size):
        raise PlrpError("a region lies outside its chromosome")


def iter_chrom_runs(chrom_sizes, regions, values):
    """Yield ``(chrom, start, values float32)`` contiguous pieces in genome order (FASTA order, start).

    Touches one chromosome's rows at a time, ``ROWS_PER_READ`` rows per read, so ``values`` may be an
    :class:`NpyRows` (rows read from disk with ordinary file reads), a memmap or an array, ``(N, L)`` or
    ``(N, 4, L)``, larger than memory.
    """
    _check_regions(regions, chrom_sizes, values)
    keep_start, keep_end = centre_crop(regions)
    start = regions["start"].to_numpy(np.int64)
    codes, names = pd.factorize(regions["chrom"])
    by_code = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_code], np.arange(len(names) + 1))
    groups = {str(c): by_code[bounds[i] : bounds[i + 1]] for i, c in enumerate(names)}
    for chrom in chrom_sizes:
        if chrom not in groups:
            continue
        rows = groups[chrom]
        rows = rows[np.argsort(start[rows], kind="stable")]
        rows = rows[keep_end[rows] > keep_start[rows]]
        pieces, piece_start, buffered, pos = [], None, 0, None
        for lo in range(0, len(rows), ROWS_PER_READ):
            batch = rows[lo : lo + ROWS_PER_READ]
            sorted_batch = np.sort(batch)  # monotone row reads: contiguous runs are one read each
            block = _project(_take_rows(values, sorted_batch))
            where = {r: i for i, r in enumerate(sorted_batch.tolist())}
            for r in batch.tolist():
                ks, ke = int(keep_start[r]), int(keep_end[r])
                piece = block[where[r], ks - start[r] : ke - start[r]]
                if pieces and (ks != pos or buffered >= FLUSH_BASES):
                    yield chrom, piece_start, np.concatenate(pieces)
                    pieces, buffered = [], 0
                if not pieces:
                    piece_start = ks
                pieces.append(piece)
                buffered += ke - ks
                pos = ke
        if pieces:
            yield chrom, piece_start, np.concatenate(pieces)


def run_length_intervals(chrom, start, values, block=INTERVALS_PER_BLOCK):
    """``(chrom, start, end, value)`` tuples of runs of equal consecutive ``values`` placed at ``start``.

    E.g. the zeros of sparse relevance become one interval per run. NaN never merges (NaN != NaN). Runs are
    turned into Python objects ``block`` at a time, which bounds their memory.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.size == 0:
        return
    cut = np.flatnonzero(v[1:] != v[:-1]) + 1
    starts = np.concatenate(([0], cut))
    ends = np.concatenate((cut, [v.size]))
    for lo in range(0, starts.size, block):
        s, e = starts[lo : lo + block], ends[lo : lo + block]
        yield from zip(
            itertools.repeat(chrom),
            (s + start).tolist(),
            (e + start).tolist(),
            v[s].astype(np.float64).tolist(),
        )


def bigwig_intervals(chrom_sizes, regions, values):
    """Generator of the stitched track as run-length-encoded ``(chrom, start, end, value)`` tuples,
    chromosome by chromosome in ``chrom_sizes`` order, sorted by start (what :func:`write_bigwig` writes).

    A chromosome without any value gets one empty interval ``(chrom, 0, 0, 0.0)``: pybigtools puts only
    the chromosomes it sees in the bigWig's header, and the header must list every chromosome of the genome.
    """
    pending, current = iter(chrom_sizes), None  # chromosomes not yet reached, in genome order
    for chrom, start, vals in iter_chrom_runs(chrom_sizes, regions, values):
        if chrom != current:
            for skipped in pending:
                if skipped == chrom:
                    break
                yield skipped, 0, 0, 0.0
            current = chrom
        yield from run_length_intervals(chrom, int(start), vals)
    for skipped in pending:
        yield skipped, 0, 0, 0.0


def write_bigwig(path, chrom_sizes, regions, values):
    """Write the stitched per-base values of windows as a bigWig, atomically, with pybigtools.

    ``chrom_sizes``: ``{name: length}`` in genome order (all go into the header; the bigWig's chromosome
    tree is sorted by name, as the format requires). ``regions``: DataFrame with chrom, start, end (equal
    lengths ``L``). ``values``: ``(N, L)`` float32 per region (or ``(N, 4, L)``, summed over axis 1); an
    :class:`NpyRows`, a memmap or an array: only ``ROWS_PER_READ`` rows are read at a time. Runs of equal
    consecutive values (e.g. zeros) are written as one interval each. Memory is flat in the genome size:
    intervals stream from a generator and pybigtools builds the zoom levels as it goes (pyBigWig keeps
    them all in memory until it closes the file).
    """
    import pybigtools

    sizes = {str(c): int(n) for c, n in chrom_sizes.items()}
    intervals = bigwig_intervals(sizes, regions, values)
    with atomic_path(path) as tmp:
        pybigtools.open(str(tmp), "w").write(sizes, intervals)


def write_bigbed(path, chrom_sizes, bed_df):
    """Write a BED9 DataFrame (chrom, start, end, name, score, strand, thickStart, thickEnd, itemRgb) as
    a bigBed with a bed9 autoSql, atomically. Missing optional columns get BED defaults; rows are sorted
    by chromosome (genome order) and start; scores are clipped to 0-1000. With no rows (a method with
    zero calls) the file is written by :func:`_empty_bigbed`: pybigtools 0.3 writes all zero bytes then."""
    import pybigtools

    df = bed_df.copy()
    unknown = set(df["chrom"]) - set(chrom_sizes)
    if unknown:
        raise PlrpError(f"bigBed: chromosome {min(unknown)!r} is not in the genome")
    defaults = {
        "name": ".",
        "score": 0,
        "strand": ".",
        "thickStart": df["start"],
        "thickEnd": df["end"],
        "itemRgb": "0",
    }
    for col, default in defaults.items():
        if col not in df:
            df[col] = default
    rank = {c: i for i, c in enumerate(chrom_sizes)}
    df = df.iloc[np.lexsort((df["end"], df["start"], df["chrom"].map(rank)))]
    score = np.clip(pd.to_numeric(df["score"]).fillna(0).round(), 0, 1000).astype(np.int64)
    rest = (
        df["name"].astype(str)
        + "\t"
        + score.astype(str)
        + "\t"
        + df["strand"].astype(str)
        + "\t"
        + df["thickStart"].astype(np.int64).astype(str)
        + "\t"
        + df["thickEnd"].astype(np.int64).astype(str)
        + "\t"
        + df["itemRgb"].astype(str)
    )
    entries = zip(
        df["chrom"].astype(str),
        df["start"].astype(int).tolist(),
        df["end"].astype(int).tolist(),
        rest,
    )
    with atomic_path(path) as tmp:
        if tmp.suffix not in (".bb", ".bigBed"):
            raise PlrpError(f"{path}: a bigBed path must end in .bb or .bigBed")
        sizes = {str(c): int(n) for c, n in chrom_sizes.items()}
        if df.empty:  # pybigtools 0.3 writes all zero bytes for no records
            tmp.write_bytes(_empty_bigbed(sizes, BED9_AUTOSQL, fields=9))
        else:
            pybigtools.open(str(tmp), "w").write(sizes, entries, autosql=BED9_AUTOSQL)


BIGBED_MAGIC = 0x8789F2EB
_BPT_MAGIC = 0x78CA8C91  # chromosome B+ tree
_CIRTREE_MAGIC = 0x2468ACE0  # R-tree index
_BLOCK_SIZE = 256  # items per B+ tree node and R-tree node, as UCSC's bedToBigBed
_ITEMS_PER_SLOT = 512


def _chrom_tree(chrom_sizes, base):
    """The chromosome B+ tree of a bbi file (UCSC ``bptFileBulkIndexToOpenFile``), to be written at file
    offset ``base`` (child offsets are absolute) -> bytes.

    Keys are the names, zero-padded to the longest, sorted bytewise; chromosome ids follow that order;
    values are ``(id uint32, size uint32)``. Nodes hold up to ``min(256, n)`` items and are padded to
    full size, so the offsets of child nodes follow from the level sizes."""
    keys = sorted(c.encode() for c in chrom_sizes)
    sizes = {c.encode(): n for c, n in chrom_sizes.items()}
    n = len(keys)
    block = max(1, min(_BLOCK_SIZE, n))
    key_size = max([len(k) for k in keys] + [1])
    out = bytearray(struct.pack("<IIIIQQ", _BPT_MAGIC, block, key_size, 8, n, 0))
    levels = 1
    count = n
    while count > block:
        count = (count + block - 1) // block
        levels += 1
    node_bytes = 4 + block * (key_size + 8)  # leaf (key, id, size) and index (key, offset) alike
    offset = base + len(out)
    for level in range(levels - 1, 0, -1):  # non-leaf levels, root first
        slot = block**level  # items under one slot of a node at this level
        per_node = slot * block
        nodes = (n + per_node - 1) // per_node
        child = offset + nodes * node_bytes
        for i in range(0, n, per_node):
            idx = list(range(i, min(i + per_node, n), slot))
            out += struct.pack("<BBH", 0, 0, len(idx))
            for j in idx:
                out += keys[j].ljust(key_size, b"\0") + struct.pack("<Q", child)
                child += node_bytes
            out += bytes((block - len(idx)) * (key_size + 8))
        offset += nodes * node_bytes
    for i in range(0, max(n, 1), block):  # leaves (one empty leaf for no chromosomes)
        idx = range(i, min(i + block, n))
        out += struct.pack("<BBH", 1, 0, len(idx))
        for j in idx:
            out += keys[j].ljust(key_size, b"\0") + struct.pack("<II", j, sizes[keys[j]])
        out += bytes((block - len(idx)) * (key_size + 8))
    return bytes(out)


def _empty_bigbed(chrom_sizes, autosql, fields):
    """A valid bigBed (UCSC bbi format, version 4) with no records -> bytes.

    Layout: the 64-byte header, no zoom levels, the autoSql (NUL-terminated), the total summary (all
    zero), the chromosome B+ tree holding every chromosome of ``chrom_sizes``, the data count 0 (uint64),
    an R-tree index of zero items (its header and one empty leaf as the root node), and the magic again
    at the end. pyBigWig (libBigWig), pybigtools and igv.js read it as a bigBed without items."""
    header_size, summary_size = 64, 40
    autosql_bytes = autosql.encode() + b"\0"
    autosql_offset = header_size
    summary_offset = autosql_offset + len(autosql_bytes)
    chrom_offset = summary_offset + summary_size
    tree = _chrom_tree(chrom_sizes, chrom_offset)
    data_offset = chrom_offset + len(tree)
    index_offset = data_offset + 8
    header = struct.pack(
        "<IHHQQQHHQQIQ",
        BIGBED_MAGIC,
        4,  # version
        0,  # zoom levels
        chrom_offset,
        data_offset,
        index_offset,
        fields,  # fieldCount
        fields,  # definedFieldCount
        autosql_offset,
        summary_offset,
        0,  # uncompressBufSize: 0 = blocks not compressed
        0,  # extension offset: none
    )
    summary = struct.pack("<Qdddd", 0, 0.0, 0.0, 0.0, 0.0)
    data = struct.pack("<Q", 0)
    index = struct.pack(
        "<IIQIIIIQII",
        _CIRTREE_MAGIC,
        _BLOCK_SIZE,
        0,  # items
        0,  # startChromIx
        0,  # startBase
        0,  # endChromIx
        0,  # endBase
        index_offset,  # endFileOffset: end of the data
        _ITEMS_PER_SLOT,
        0,
    ) + struct.pack("<BBH", 1, 0, 0)  # root: an empty leaf
    out = header + autosql_bytes + summary + tree + data + index + struct.pack("<I", BIGBED_MAGIC)
    assert len(header) == header_size and len(summary) == summary_size
    return out


def read_bigwig_values(path, chrom, start, end):
    """Per-base values of ``chrom:[start, end)`` from a bigWig, float64; NaN where nothing is written."""
    import pyBigWig

    bw = pyBigWig.open(str(path))
    try:
        return np.asarray(bw.values(chrom, int(start), int(end), numpy=True), dtype=np.float64)
    finally:
        bw.close()
