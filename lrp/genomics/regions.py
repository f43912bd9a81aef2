"""Regions: validate a BED, re-centre it to the model length, or tile whole chromosomes; N gaps; shards.

The region table ``regions.bed`` is BED6 (chrom, start, end, name, 0, ``.``) without a header; row ``i`` is
region index ``i``; every region has exactly the model's input length ``L``; rows are sorted by chromosome
(FASTA order) and start. Shard ``k`` of size ``S`` holds rows ``[k*S, (k+1)*S)``.

CLI::

    plrp regions --fasta G.fa --length L --bed B.bed --out regions.bed
    plrp regions --fasta G.fa --length L --tile [--step S] [--chroms c1 c2 ...] [--min-gap G]
                 [--max-n-fraction F] --out regions.bed [--gaps-out gaps.bed]
    ... [--shard-size K --n-shards-out n_shards.txt] [--chrom-sizes-out chrom.sizes]

``--bed`` re-centres each region to ``L`` (shifted inside the chromosome; dropped with a warning when the
chromosome is shorter than ``L``). ``--tile`` covers whole chromosomes with windows of ``L`` every ``S`` bases
(default ``S = L // 2``); see :func:`tile` for N gaps.
"""

import logging
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError, input_error

log = logging.getLogger("plrp")

BED_COLUMNS = ["chrom", "start", "end", "name", "score", "strand"]
EXTRA_COLUMNS = ["thickStart", "thickEnd", "itemRgb", "blockCount", "blockSizes", "blockStarts"]
SKIP_PREFIXES = ("#", "track", "browser")


def _int(text):
    try:
        return int(text)
    except ValueError:
        return None


def _header_like(fields):
    """Whether a line looks like a column header: its start and end are words (``chromStart``), not numbers."""
    return all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", f) for f in fields[1:3])


def read_bed(path, chrom_sizes, what="regions", require_name=False):
    """Read and validate a BED (3+ columns) -> DataFrame with chrom, start, end, name, score, strand.

    Blank lines and lines starting with ``#``, ``track`` or ``browser`` are skipped. Columns past the sixth
    are kept (BED12 names, then ``extra7``...) as strings. Missing name -> ``chrom:start-end``, score -> 0,
    strand -> ``.``; with ``require_name`` (known sites: the name is the TF) a line without a name is an
    error. ``chrom_sizes`` (``{name: length}``, or None to skip the checks) bounds each interval.
    Every problem raises a one-line PlrpError naming the file, the line number and the fix.
    """
    path = str(path)
    if not Path(path).is_file():
        raise input_error(path, None, f"{what} BED not found", "check the path in the config")
    rows = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith(SKIP_PREFIXES):
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            where = f"line {lineno}"
            if len(fields) < 3:
                raise input_error(
                    path,
                    where,
                    f"{len(fields)} column(s), BED needs at least 3 (chrom, start, end)",
                    "write tab-separated chrom, start, end",
                )
            chrom, start, end = fields[0], _int(fields[1]), _int(fields[2])
            if start is None or end is None:
                raise input_error(
                    path,
                    where,
                    f"start/end not integers ({fields[1]!r}, {fields[2]!r})",
                    "remove the column-header line (or start it with '#')"
                    if not rows and _header_like(fields)
                    else "use 0-based integer coordinates in columns 2 and 3",
                )
            if start < 0 or end < 0:
                raise input_error(
                    path, where, "negative coordinate", "use 0-based coordinates >= 0"
                )
            if start >= end:
                raise input_error(
                    path, where, f"start {start} >= end {end}", "give each interval start < end"
                )
            if chrom_sizes is not None:
                if chrom not in chrom_sizes:
                    raise input_error(
                        path,
                        where,
                        f"contig {chrom!r} is not in the FASTA",
                        "use the FASTA's record names (e.g. 'chr1' vs '1') or drop the line",
                    )
                if end > chrom_sizes[chrom]:
                    raise input_error(
                        path,
                        where,
                        f"end {end} is past the end of {chrom} ({chrom_sizes[chrom]})",
                        "check that the BED matches this genome assembly",
                    )
            name = fields[3] if len(fields) > 3 else f"{chrom}:{start}-{end}"
            score = 0.0
            if len(fields) > 4 and fields[4] not in (".", ""):
                try:
                    score = float(fields[4])
                except ValueError:
                    raise input_error(
                        path, where, f"score {fields[4]!r} is not a number", "use a number or '.'"
                    ) from None
            strand = fields[5] if len(fields) > 5 else "."
            if strand not in ("+", "-", "."):
                raise input_error(
                    path, where, f"strand {strand!r} is not +, - or .", "use +, - or ."
                )
            if require_name and (len(fields) < 4 or not fields[3].strip() or fields[3] == "."):
                raise input_error(
                    path,
                    where,
                    f"no name in column 4: {what} need the TF name of each site",
                    "write BED6 (chrom, start, end, TF name, score, strand), e.g. "
                    f"'{chrom}\\t{fields[1]}\\t{fields[2]}\\tCTCF\\t0\\t+'",
                )
            rows.append([chrom, start, end, name, score, strand] + fields[6:])
    if not rows:
        raise input_error(
            path,
            None,
            f"no {what} (empty file or only comment/track lines)",
            "give a non-empty BED",
        )
    width = max(len(r) for r in rows)
    extra = (EXTRA_COLUMNS + [f"extra{i}" for i in range(13, width + 1)])[: width - 6]
    rows = [r + [None] * (width - len(r)) for r in rows]
    df = pd.DataFrame(rows, columns=BED_COLUMNS + extra)
    return df.astype({"chrom": str, "start": np.int64, "end": np.int64, "score": float})


def sort_regions(df, chrom_order):
    """Sort by chromosome (in ``chrom_order``) then start, end; index reset to 0..N-1."""
    rank = {c: i for i, c in enumerate(chrom_order)}
    key = df["chrom"].map(rank)
    if key.isna().any():
        raise PlrpError(f"chromosome {df['chrom'][key.isna()].iloc[0]!r} is not in the genome")
    order = np.lexsort((df["end"].to_numpy(), df["start"].to_numpy(), key.to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def resize(df, length, chrom_sizes=None):
    """Re-centre every region to exactly ``length`` bp (start = old start + (old width - length) // 2).

    With ``chrom_sizes``, windows that fall off a chromosome are shifted inside it; regions on chromosomes
    shorter than ``length`` are dropped with one warning. Name, score, strand and extras are kept.
    """
    df = df.copy()
    start = df["start"].to_numpy(np.int64)
    width = df["end"].to_numpy(np.int64) - start
    new = start + (width - length) // 2
    new = np.maximum(new, 0)
    if chrom_sizes is not None:
        size = df["chrom"].map(chrom_sizes).to_numpy(np.int64)
        new = np.minimum(new, size - length)
        short = size < length
        if short.any():
            chroms = sorted(set(df["chrom"][short]))
            warnings.warn(
                f"dropped {int(short.sum())} region(s) on chromosome(s) shorter than {length} bp: "
                f"{', '.join(chroms[:5])}",
                stacklevel=2,
            )
            df, new = df[~short], new[~short]
    df["start"] = new
    df["end"] = new + length
    return df.reset_index(drop=True)


def _segments(size, gap_starts, gap_ends):
    """Complement of sorted disjoint gaps in ``[0, size)`` -> (starts, ends)."""
    bounds = np.concatenate([[0], np.column_stack([gap_starts, gap_ends]).ravel(), [size]])
    s, e = bounds[0::2], bounds[1::2]
    keep = e > s
    return s[keep], e[keep]


def _n_in(starts, ends, run_starts, run_ends):
    """Number of N bases in each interval ``[starts, ends)`` given sorted disjoint N runs."""
    if run_starts.size == 0:
        return np.zeros(len(starts), np.int64)
    cum = np.concatenate([[0], np.cumsum(run_ends - run_starts)])

    def n_before(x):  # N bases in [0, x)
        i = np.searchsorted(run_ends, x, side="right")  # runs that end at or before x
        part = np.zeros_like(x)
        inside = i < run_starts.size
        part[inside] = np.clip(x[inside] - run_starts[i[inside]], 0, None)
        return cum[i] + part

    return n_before(np.asarray(ends, np.int64)) - n_before(np.asarray(starts, np.int64))


def _tile_chrom(size, length, step, run_starts, run_ends, min_gap, max_n_fraction):
    """Window starts for one chromosome: each segment between N gaps is tiled from its start, the last
    window aligned to its end; segments shorter than ``length`` get one window centred on them."""
    big = (run_ends - run_starts) >= min_gap
    seg_s, seg_e = _segments(size, run_starts[big], run_ends[big])
    starts = []
    for a, b in zip(seg_s.tolist(), seg_e.tolist()):
        if b - a >= length:
            grid = np.arange(a, b - length + 1, step, dtype=np.int64)
            starts.append(grid)
            if grid[-1] != b - length:
                starts.append(np.array([b - length], np.int64))
        else:
            s = min(max(a + (b - a - length) // 2, 0), size - length)
            starts.append(np.array([s], np.int64))
    starts = np.unique(np.concatenate(starts)) if starts else np.zeros(0, np.int64)
    frac = _n_in(starts, starts + length, run_starts, run_ends) / length
    return starts[(frac <= max_n_fraction) & (frac < 1.0)]


def _uncovered(size, starts, length):
    """``[0, size)`` minus the union of windows -> (starts, ends)."""
    if starts.size == 0:
        return np.array([0]), np.array([size])
    ends = starts + length
    cover_end = np.maximum.accumulate(ends)
    new_block = np.concatenate([[True], starts[1:] > cover_end[:-1]])
    bs, be = starts[new_block], cover_end[np.concatenate([new_block[1:], [True]])]
    return _segments(size, bs, be)


def tile(fasta_path, length, step, chroms=None, max_n_fraction=0.5, min_gap=25):
    """Tile whole chromosomes -> ``(regions, gaps)`` DataFrames (BED6 each), streaming one chromosome at a time.

    N runs of at least ``min_gap`` bp split a chromosome into segments; each segment is tiled with windows of
    ``length`` every ``step`` bp from its start, the last window aligned to its end (segments shorter than
    ``length`` get one centred window). Windows with more than ``max_n_fraction`` N (and all-N windows) are
    dropped. ``gaps`` lists every base no window covers, named ``N`` (all N), ``N_rich`` (part of a dropped
    mostly-N window) or ``short_contig`` (chromosome shorter than ``length``); every other base is covered.
    """
    from lrp.genomics.genome import n_runs, open_fasta

    if length <= 0 or step <= 0:
        raise PlrpError(f"tile: length ({length}) and step ({step}) must be positive")
    fasta = open_fasta(fasta_path)
    sizes = {c: int(fasta.faidx.index[c].rlen) for c in fasta.faidx.index}
    if chroms:
        unknown = [c for c in chroms if c not in sizes]
        if unknown:
            raise input_error(
                fasta_path, unknown[0], "chromosome not in the FASTA", "check --chroms / config"
            )
        chroms = [c for c in sizes if c in set(chroms)]
    else:
        chroms = list(sizes)
    regions, gaps = [], []
    for chrom in chroms:
        size = sizes[chrom]
        if size < length:
            log.warning("%s: %s is shorter than %d bp: not tiled", fasta_path, chrom, length)
            gaps.append(
                pd.DataFrame({"chrom": chrom, "start": [0], "end": [size], "name": "short_contig"})
            )
            continue
        rs, re_ = n_runs(fasta, chrom)
        starts = _tile_chrom(size, length, step, rs, re_, min_gap, max_n_fraction)
        regions.append(pd.DataFrame({"chrom": chrom, "start": starts, "end": starts + length}))
        us, ue = _uncovered(size, starts, length)
        name = np.where(_n_in(us, ue, rs, re_) == (ue - us), "N", "N_rich")
        gaps.append(pd.DataFrame({"chrom": chrom, "start": us, "end": ue, "name": name}))
    regions = _finish(regions, ["chrom", "start", "end"])
    regions["name"] = (
        regions["chrom"] + ":" + regions["start"].astype(str) + "-" + regions["end"].astype(str)
    )
    regions["score"], regions["strand"] = 0, "."
    gaps = _finish(gaps, ["chrom", "start", "end", "name"])
    gaps["score"], gaps["strand"] = 0, "."
    return regions, gaps


def _finish(frames, columns):
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(
            {c: pd.Series(dtype=np.int64 if c in ("start", "end") else str) for c in columns}
        )
    df = pd.concat(frames, ignore_index=True)
    return df.astype({"start": np.int64, "end": np.int64})


def write_regions(df, path):
    """Write a region table (BED6, no header; row = region index), atomically."""
    out = pd.DataFrame(
        {
            "chrom": df["chrom"].astype(str),
            "start": df["start"].astype(np.int64),
            "end": df["end"].astype(np.int64),
            "name": df["name"] if "name" in df else df["chrom"] + ":" + df["start"].astype(str),
            "score": 0,
            "strand": ".",
        }
    )
    with atomic_open(path) as handle:
        out.to_csv(handle, sep="\t", header=False, index=False)


def read_regions(path, rows=None, coords_only=False):
    """Read a region table -> DataFrame (chrom, start, end, name, score, strand), index = region index.

    ``rows=(start, stop)`` reads only rows ``[start, stop)`` (the index keeps the region numbers), e.g. one
    shard. ``coords_only`` reads only chrom (categorical), start and end: what stitching needs, a fraction of
    the memory of the whole table.
    """
    skip, nrows = 0, None
    if rows is not None:
        skip, stop = int(rows[0]), int(rows[1])
        nrows = max(stop - skip, 0)
    if coords_only:
        names, usecols = BED_COLUMNS[:3], [0, 1, 2]
        dtype = {"chrom": "category", "start": np.int64, "end": np.int64}
    else:
        names, usecols = BED_COLUMNS, None
        dtype = {"chrom": str, "start": np.int64, "end": np.int64, "name": str, "strand": str}
    empty = pd.DataFrame({c: pd.Series(dtype=dtype.get(c, float)) for c in names})
    try:
        if nrows == 0:
            if not Path(path).is_file():
                raise FileNotFoundError(path)
            df = empty
        else:
            df = pd.read_csv(
                path,
                sep="\t",
                header=None,
                names=names,
                usecols=usecols,
                dtype=dtype,
                keep_default_na=False,
                skiprows=skip,
                nrows=nrows,
            )
    except FileNotFoundError:
        raise input_error(
            path, None, "region table not found", "run `plrp regions` first"
        ) from None
    except pd.errors.EmptyDataError:  # rows past the end (an empty table keeps the error)
        if not skip:
            raise input_error(path, None, "no regions", "rerun `plrp regions`") from None
        df = empty
    except (ValueError, pd.errors.ParserError) as err:
        raise input_error(
            path, None, f"not a BED6 region table ({err})", "rerun `plrp regions`"
        ) from err
    if skip:
        df.index = pd.RangeIndex(skip, skip + len(df))
    return df


def count_regions(path, chunk=1 << 22):
    """Number of regions (non-empty lines) of a region table, counted in chunks without parsing it."""
    lines, blank, prev = 0, 0, b"\n"  # a leading newline is an empty line
    try:
        with open(path, "rb") as handle:
            while data := handle.read(chunk):
                newline = np.frombuffer(prev + data, np.uint8) == ord("\n")
                lines += int(newline[1:].sum())
                blank += int((newline[1:] & newline[:-1]).sum())
                prev = data[-1:]
    except FileNotFoundError:
        raise input_error(
            path, None, "region table not found", "run `plrp regions` first"
        ) from None
    if prev != b"\n":  # last line without a newline
        lines += 1
    return lines - blank


def n_shards(n_regions, shard_size):
    """Number of shards of ``shard_size`` rows needed for ``n_regions`` rows."""
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    return math.ceil(n_regions / shard_size)


def shard_bounds(n_regions, shard_size):
    """``[(start, stop), ...]``: shard ``k`` holds rows ``[k*S, min((k+1)*S, n))``."""
    return [
        (k * shard_size, min((k + 1) * shard_size, n_regions))
        for k in range(n_shards(n_regions, shard_size))
    ]


def make_regions(
    fasta,
    length,
    out,
    bed=None,
    step=None,
    chroms=None,
    min_gap=25,
    max_n_fraction=0.5,
    gaps_out=None,
    shard_size=None,
    n_shards_out=None,
    chrom_sizes_out=None,
):
    """Write the region table of a genome: a BED re-centred to ``length``, or (``bed=None``) whole
    chromosomes tiled; sorted in FASTA order, atomically.

    Parameters
    ----------
    fasta : str
        Genome FASTA.
    length : int
        The model's input length ``L`` (bp): every region is ``L`` bp.
    out : str
        The region table (BED6).
    bed : str or None
        BED of regions to re-centre; None tiles whole chromosomes (see :func:`tile`).
    step, chroms, min_gap, max_n_fraction
        Tiling: step (default ``L // 2``), chromosomes (default all), N runs that split a chromosome,
        largest N share of a tile.
    gaps_out : str or None
        BED of the bases no tile covers (empty for a BED).
    shard_size : int or None
        Regions per shard (for ``n_shards_out``).
    n_shards_out, chrom_sizes_out : str or None
        Files for the number of shards and the FASTA's chrom.sizes.

    Returns
    -------
    pandas.DataFrame
        The regions written.
    """
    from lrp.genomics.genome import chrom_sizes, write_chrom_sizes

    if n_shards_out and not shard_size:
        raise PlrpError("--n-shards-out needs --shard-size. Fix: pass --shard-size K")
    if shard_size is not None and shard_size <= 0:
        raise PlrpError(f"--shard-size {shard_size}: must be positive. Fix: e.g. 256")
    sizes = chrom_sizes(fasta)
    gaps = None
    if bed is None:
        regions, gaps = tile(
            fasta, length, step or max(length // 2, 1), chroms, max_n_fraction, min_gap
        )
    else:
        if chroms:
            raise PlrpError("--chroms applies to --tile only; filter the BED instead")
        regions = resize(read_bed(bed, sizes, "regions"), length, sizes)
    regions = sort_regions(regions, list(sizes))
    if regions.empty:
        raise PlrpError(f"{bed or fasta}: no regions of length {length} left")
    write_regions(regions, out)
    log.info("%d regions of %d bp -> %s", len(regions), length, out)
    if gaps_out:
        if gaps is None:
            gaps = pd.DataFrame(columns=BED_COLUMNS)
        with atomic_open(gaps_out) as handle:
            gaps[BED_COLUMNS].to_csv(handle, sep="\t", header=False, index=False)
    if n_shards_out:
        with atomic_open(n_shards_out) as handle:
            handle.write(f"{n_shards(len(regions), shard_size)}\n")
    if chrom_sizes_out:
        write_chrom_sizes(sizes, chrom_sizes_out)
    return regions
