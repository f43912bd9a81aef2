"""Genome-browser tracks: stitch window values (nearest-centre rule), write bigWig and bigBed.

Overlapping windows of equal length: each base takes its value from the window whose centre is nearest
(ties: the leftmost window), i.e. a centre crop, so every covered base is written exactly once.

CLI::

    plrp bigwig --relevance relevance.npz --regions regions.bed --fasta genome.fa --out track.bw

The projected score is ``relevance.sum(1)``; a sibling ``relevance.npy`` is memory-mapped when present,
else the ``relevance`` member of the npz is memory-mapped when stored uncompressed, else loaded.
"""

import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from lrp.atomic import atomic_path
from lrp.errors import PlrpError, input_error

log = logging.getLogger("plrp")

ROWS_PER_READ = 256  # region rows read from ``values`` at a time
FLUSH_BASES = 1 << 20  # bases buffered before an addEntries call

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
    chrom = regions["chrom"].astype(str).to_numpy()
    start = regions["start"].to_numpy(np.int64)
    end = regions["end"].to_numpy(np.int64)
    keep_start, keep_end = start.copy(), end.copy()
    if len(start) == 0:
        return keep_start, keep_end
    codes, _ = pd.factorize(chrom)
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


def _check_regions(regions, chrom_sizes, values):
    if len(values) != len(regions):
        raise PlrpError(f"{len(values)} value rows for {len(regions)} regions")
    unknown = set(regions["chrom"]) - set(chrom_sizes)
    if unknown:
        raise PlrpError(f"region chromosome {min(unknown)!r} is not in the genome")
    width = values.shape[-1]
    if np.any(regions["end"].to_numpy() - regions["start"].to_numpy() != width):
        raise PlrpError(f"every region must be {width} bp long (the values' last axis)")
    size = regions["chrom"].map(chrom_sizes).to_numpy()
    if np.any(regions["start"].to_numpy() < 0) or np.any(regions["end"].to_numpy() > size):
        raise PlrpError("a region lies outside its chromosome")


def iter_chrom_runs(chrom_sizes, regions, values):
    """Yield ``(chrom, start, values float32)`` contiguous pieces in genome order (FASTA order, start).

    Touches one chromosome's rows at a time, ``ROWS_PER_READ`` rows per read, so ``values`` may be a
    memmap ``(N, L)`` or ``(N, 4, L)`` larger than memory.
    """
    _check_regions(regions, chrom_sizes, values)
    keep_start, keep_end = centre_crop(regions)
    start = regions["start"].to_numpy(np.int64)
    groups = regions.groupby("chrom", sort=False).indices
    for chrom in chrom_sizes:
        if chrom not in groups:
            continue
        rows = groups[chrom]
        rows = rows[np.argsort(start[rows], kind="stable")]
        rows = rows[keep_end[rows] > keep_start[rows]]
        pieces, piece_start, buffered, pos = [], None, 0, None
        for lo in range(0, len(rows), ROWS_PER_READ):
            batch = rows[lo : lo + ROWS_PER_READ]
            sorted_batch = np.sort(batch)  # monotone row reads are kinder to a memmap
            block = _project(values[sorted_batch])
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


def write_bigwig(path, chrom_sizes, regions, values):
    """Write the stitched per-base values of windows as a bigWig, atomically, with pyBigWig.

    ``chrom_sizes``: ``{name: length}`` in genome order (all go into the header). ``regions``: DataFrame
    with chrom, start, end (equal lengths ``L``). ``values``: ``(N, L)`` float32 per region (or
    ``(N, 4, L)``, summed over axis 1), may be a memmap: only a few rows are read at a time.
    """
    import pyBigWig

    with atomic_path(path) as tmp:
        bw = pyBigWig.open(str(tmp), "w")
        try:
            bw.addHeader([(c, int(n)) for c, n in chrom_sizes.items()], maxZooms=10)
            for chrom, start, vals in iter_chrom_runs(chrom_sizes, regions, values):
                bw.addEntries(chrom, int(start), values=vals.astype(np.float64), span=1, step=1)
        finally:
            bw.close()


def write_bigbed(path, chrom_sizes, bed_df):
    """Write a BED9 DataFrame (chrom, start, end, name, score, strand, thickStart, thickEnd, itemRgb) as
    a bigBed with a bed9 autoSql, atomically. Missing optional columns get BED defaults; rows are sorted
    by chromosome (genome order) and start; scores are clipped to 0-1000."""
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
        writer = pybigtools.open(str(tmp), "w")
        writer.write({c: int(n) for c, n in chrom_sizes.items()}, entries, autosql=BED9_AUTOSQL)


def read_bigwig_values(path, chrom, start, end):
    """Per-base values of ``chrom:[start, end)`` from a bigWig, float64; NaN where nothing is written."""
    import pyBigWig

    bw = pyBigWig.open(str(path))
    try:
        return np.asarray(bw.values(chrom, int(start), int(end), numpy=True), dtype=np.float64)
    finally:
        bw.close()


def _npz_member_memmap(path, key):
    """Memory-map ``key`` of an uncompressed npz; None when it is compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(handle)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            return None
        shape, fortran, dtype = read_header(handle)
        offset = handle.tell()
    if fortran or dtype.hasobject:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def open_relevance(path):
    """``(N, 4, L)`` relevance, lazily: sibling ``relevance.npy`` (memmap), else the npz member."""
    path = Path(path)
    sibling = path.with_suffix(".npy")
    if sibling.exists():
        return np.load(sibling, mmap_mode="r")
    if not path.exists():
        raise input_error(path, None, "relevance file not found", "run `plrp gather` first")
    try:
        arr = _npz_member_memmap(path, "relevance")
    except KeyError:
        raise input_error(path, "relevance", "no such array", "run `plrp gather` again") from None
    if arr is None:
        log.info("%s: compressed npz, loading relevance into memory", path)
        arr = np.load(path)["relevance"]
    return arr


def bigwig_arguments(parser):
    parser.add_argument(
        "--relevance", required=True, help="relevance.npz (key relevance (N, 4, L))"
    )
    parser.add_argument("--regions", required=True, help="region table regions.bed")
    parser.add_argument("--fasta", required=True, help="genome FASTA (chromosome sizes)")
    parser.add_argument("--out", required=True, help="bigWig to write")


def bigwig_main(args):
    from lrp.genome import chrom_sizes
    from lrp.regions import read_regions

    relevance = open_relevance(args.relevance)
    regions = read_regions(args.regions)
    if relevance.ndim != 3 or relevance.shape[1] != 4:
        raise input_error(
            args.relevance, "relevance", f"shape {relevance.shape}, expected (N, 4, L)", "regather"
        )
    if len(relevance) != len(regions):
        raise input_error(
            args.relevance,
            "relevance",
            f"{len(relevance)} rows for {len(regions)} regions",
            f"regather the attributions for {args.regions}",
        )
    write_bigwig(args.out, chrom_sizes(args.fasta), regions, relevance)
    log.info("wrote %s", args.out)
