"""Validated FASTA access: open a genome, its chromosome sizes, and one-hot windows (ACGT order).

One-hot arrays are ``(N, 4, L)`` float32, channels A, C, G, T. ``N`` is an all-zero column; the IUPAC
ambiguity codes ``RYSWKMBDHV`` are treated as ``N`` (one warning per call); any other letter is an error.
Coordinates are 0-based, half-open; a window past a contig's end is an error.

A FASTA may be plain or block-gzipped (BGZF, as ``bgzip`` writes it and genomes are distributed): pyfaidx reads
BGZF directly, with its ``.fai`` and ``.gzi`` beside it. A plain-gzip FASTA cannot be indexed and is refused with
the ``bgzip`` command that converts it.
"""

import gzip
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pyfaidx

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError, input_error

log = logging.getLogger("plrp")

ALPHABET = "ACGT"
IUPAC = "RYSWKMBDHV"
_N, _AMBIGUOUS, _INVALID = 4, 5, 6

# Byte -> code: 0-3 for A, C, G, T; 4 for N; 5 for IUPAC ambiguity codes; 6 for anything else.
_LUT = np.full(256, _INVALID, dtype=np.uint8)
for _i, _b in enumerate(ALPHABET):
    _LUT[ord(_b)] = _LUT[ord(_b.lower())] = _i
_LUT[ord("N")] = _LUT[ord("n")] = _N
for _b in IUPAC:
    _LUT[ord(_b)] = _LUT[ord(_b.lower())] = _AMBIGUOUS

_BLOCK = 1 << 24  # bytes read at a time when scanning FASTA headers


def _fix_fasta(path):
    return f"check that {path} is a FASTA (plain or bgzip) with one '>name' header per record"


def compression(path):
    """How the file at ``path`` is compressed: ``None``, ``"bgzf"``, ``"gzip"``, ``"bzip2"`` or ``"xz"``.

    Decided from the first bytes, not the name: BGZF is a gzip member with a ``BC`` extra field.
    """
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] == b"\x1f\x8b":
        return "bgzf" if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC" else "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def _open_bytes(path, packing):
    """The FASTA's uncompressed bytes as a binary stream (BGZF is read as the gzip it also is)."""
    return gzip.open(path, "rb") if packing == "bgzf" else open(path, "rb")


def _check_compression(path):
    """``None`` or ``"bgzf"`` for a FASTA plrp reads; any other compression is an error with its fix."""
    packing = compression(path)
    if packing == "gzip":
        plain = path[: -len(".gz")] if path.endswith(".gz") else f"{path}.fa"
        raise input_error(
            path,
            None,
            "gzip-compressed FASTA is not block-gzipped (BGZF), so it cannot be indexed",
            f"recompress it with bgzip (Debian package tabix): gunzip -c {path} > {plain} && "
            f"bgzip -@2 {plain} (writes {plain}.gz)",
        )
    if packing in ("bzip2", "xz"):
        raise input_error(
            path,
            None,
            f"{packing}-compressed FASTA is not supported",
            "decompress it, then use it as is or compress it with bgzip",
        )
    return packing


def _scan_headers(path, packing=None):
    """Record names in file order, cut at the first whitespace as pyfaidx does (reads in blocks)."""
    names, carry = [], b"\n"  # a virtual newline before the file's first byte
    with _open_bytes(path, packing) as handle:
        while True:
            block = handle.read(_BLOCK)
            data = carry + block
            # Headers whose line is complete in ``data``; a partial last line waits for the next block.
            limit = len(data) if not block else data.rfind(b"\n")
            pos = data.find(b">", 1)  # '>' is rare, so this runs at memchr speed
            while 0 < pos < limit:
                if data[pos - 1] == 10:  # a '>' at the start of a line
                    eol = data.find(b"\n", pos)
                    header = data[pos + 1 : eol if eol >= 0 else len(data)]
                    header = header.decode("utf-8", "replace").strip()
                    names.append(header.split()[0] if header else "")
                pos = data.find(b">", pos + 1)
            if not block:
                return names
            # Keep from the last newline on: it may start a header cut by the block end.
            carry = data[limit:]


def _check_fai(path, fasta, packing=None):
    """Check that each .fai record ends where the next header (or the end of the file) begins.

    For BGZF the offsets are in the uncompressed stream, which only a full decompression could check; pyfaidx
    rebuilds a BGZF's ``.fai`` and ``.gzi`` when they are older than the FASTA.
    """
    if packing == "bgzf":
        return
    fai = f"{path}.fai"
    records = list(fasta.faidx.index.items())
    with open(path, "rb") as handle:
        for i, (name, rec) in enumerate(records):
            full, rest = divmod(rec.rlen, rec.lenc) if rec.lenc else (0, 0)
            handle.seek(rec.offset + full * rec.lenb + rest)
            after = handle.read(256).lstrip(b"\r\n")
            if i + 1 < len(records):
                ok = after.startswith(b">" + records[i + 1][0].encode())
            else:
                ok = after.strip() == b""
            if not ok:
                raise input_error(
                    fai,
                    name,
                    "the index does not match the FASTA (stale or bad .fai)",
                    f"delete {fai} so it is rebuilt",
                )


def open_fasta(path):
    """Open ``path`` as a validated ``pyfaidx.Fasta`` (strict bounds; the .fai is built if missing).

    Raises PlrpError for a missing, unreadable or empty file, no records, duplicate or empty record names,
    inconsistent line lengths, and a stale or bad ``.fai``.
    """
    path = str(path)
    p = Path(path)
    if not p.exists():
        raise input_error(path, None, "FASTA file not found", "check the path in the config")
    if not p.is_file():
        raise input_error(path, None, "is not a file", "give the path of a FASTA file")
    if not os.access(path, os.R_OK):
        raise input_error(
            path, None, "FASTA file is not readable", f"check the permissions of {path}"
        )
    if p.stat().st_size == 0:
        raise input_error(path, None, "FASTA file is empty", _fix_fasta(path))
    packing = _check_compression(path)
    names = _scan_headers(path, packing)
    if not names:
        raise input_error(path, None, "no FASTA records ('>' headers) found", _fix_fasta(path))
    with _open_bytes(path, packing) as handle:
        if handle.read(1) != b">":
            raise input_error(
                path, "line 1", "sequence before the first '>' header", _fix_fasta(path)
            )
    seen = set()
    for i, name in enumerate(names):
        if not name:
            raise input_error(
                path, f"record {i + 1}", "empty record name", "give every record a name"
            )
        if name in seen:
            raise input_error(
                path,
                name,
                "duplicate record name (names are cut at the first space)",
                "give every record a unique name",
            )
        seen.add(name)
    try:
        fasta = pyfaidx.Fasta(path, sequence_always_upper=True, strict_bounds=True, as_raw=True)
    except pyfaidx.FastaIndexingError as err:
        if "line length" in str(err).lower():
            raise input_error(
                path,
                _unequal_lines(path, packing) or None,
                "lines of unequal width inside a record, so it cannot be indexed",
                f"rewrap every record to one width, e.g. seqkit seq -w 60 {path} > rewrapped.fa",
            ) from err
        raise input_error(path, None, f"cannot index: {err}", _fix_fasta(path)) from err
    except PermissionError as err:
        raise input_error(
            path,
            None,
            f"cannot write the index {path}.fai",
            f"make the folder writable or run `samtools faidx {path}` where it is",
        ) from err
    except (ValueError, IndexError) as err:
        raise input_error(
            f"{path}.fai", None, f"bad index ({err})", f"delete {path}.fai so it is rebuilt"
        ) from err
    indexed = list(fasta.keys())
    if indexed != names:
        missing = next((n for n in names if n not in fasta), None) or indexed[0]
        raise input_error(
            f"{path}.fai",
            missing,
            "the index does not list the FASTA's records (stale or bad .fai)",
            f"delete {path}.fai so it is rebuilt",
        )
    _check_fai(path, fasta, packing)
    return fasta


def _unequal_lines(path, packing):
    """``'RECORD line N'`` of the first sequence line whose width differs from its record's first line."""
    name, width, short = None, None, None
    with _open_bytes(path, packing) as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip(b"\r\n")
            if line.startswith(b">"):
                name, width, short = line[1:].decode("utf-8", "replace").split()[0], None, None
            elif short is not None and line:
                return f"{name} line {short}"
            elif width is None:
                width = len(line)
            elif len(line) != width:
                if len(line) > width:
                    return f"{name} line {lineno}"
                short = lineno  # a shorter line is the record's last, or the fault
    return ""


def _as_fasta(fasta):
    return fasta if isinstance(fasta, pyfaidx.Fasta) else open_fasta(fasta)


def chrom_sizes(path):
    """``{name: length}`` of every record, in FASTA order. ``path`` may also be an open Fasta."""
    fasta = _as_fasta(path)
    return {name: int(fasta.faidx.index[name].rlen) for name in fasta.faidx.index}


def read_chrom_sizes(path):
    """Read a UCSC ``chrom.sizes`` file (name, length; tab-separated) -> ``{name: length}``."""
    path = str(path)
    if not Path(path).is_file():
        raise input_error(path, None, "chrom.sizes file not found", "check the path")
    sizes = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise input_error(
                    path,
                    f"line {lineno}",
                    "not 'name<TAB>length'",
                    "give a chrom.sizes file (e.g. from plrp regions --chrom-sizes-out)",
                )
            if fields[0] in sizes:
                raise input_error(
                    path, f"line {lineno}", f"{fields[0]!r} listed twice", "list each name once"
                )
            sizes[fields[0]] = int(fields[1])
    if not sizes:
        raise input_error(path, None, "no chromosomes listed", "give a non-empty chrom.sizes")
    return sizes


def write_chrom_sizes(sizes, path):
    """Write ``{name: length}`` (or a FASTA path) as a UCSC ``chrom.sizes`` file, atomically."""
    if not isinstance(sizes, dict):
        sizes = chrom_sizes(sizes)
    with atomic_open(path) as handle:
        for name, size in sizes.items():
            handle.write(f"{name}\t{size}\n")


def _codes(seq):
    """Bytes or str -> uint8 codes (0-3 ACGT, 4 N, 5 IUPAC, 6 invalid)."""
    if isinstance(seq, str):
        seq = seq.encode("latin-1", errors="replace")
    return _LUT[np.frombuffer(seq, dtype=np.uint8)]


def _one_hot_codes(codes):
    """``(..., L)`` codes -> ``(..., 4, L)`` float32 one-hot (codes >= 4 give all-zero columns)."""
    return (codes[..., None, :] == np.arange(4, dtype=np.uint8)[:, None]).astype(np.float32)


def one_hot_encode(seq):
    """One sequence -> ``(4, L)`` float32 in ACGT order; N and IUPAC codes give all-zero columns."""
    codes = _codes(seq)
    bad = np.flatnonzero(codes == _INVALID)
    if bad.size:
        k = int(bad[0])
        raise input_error(
            "<sequence>",
            f"position {k}",
            f"invalid base {seq[k]!r}",
            "use only ACGT, N or IUPAC codes",
        )
    return _one_hot_codes(codes)


def decode(ohe):
    """``(4, L)`` or ``(N, 4, L)`` one-hot -> sequence string(s); all-zero columns become ``N``."""
    ohe = np.asarray(ohe)
    if ohe.ndim == 3:
        return [decode(x) for x in ohe]
    letters = np.array(list(ALPHABET + "N"))
    idx = np.where(ohe.max(0) > 0, ohe.argmax(0), 4)
    return "".join(letters[idx])


def _region_rows(regions):
    """DataFrame or iterable of ``(chrom, start, end, ...)`` -> three lists."""
    if hasattr(regions, "columns"):
        return (
            regions["chrom"].astype(str).tolist(),
            regions["start"].astype(np.int64).tolist(),
            regions["end"].astype(np.int64).tolist(),
        )
    rows = [tuple(r[:3]) for r in regions]
    return [str(r[0]) for r in rows], [int(r[1]) for r in rows], [int(r[2]) for r in rows]


def fetch_one_hot(fasta, regions, length=None):
    """One-hot windows ``(N, 4, L)`` float32 (ACGT) for regions (a DataFrame with chrom, start, end).

    ``fasta`` is an open Fasta (from :func:`open_fasta`) or a path. All regions must have the same length
    (``length`` when given). Windows past a contig's end, unknown contigs and invalid letters raise
    PlrpError naming the file, the chromosome and the position.
    """
    fasta = _as_fasta(fasta)
    path = fasta.filename
    chroms, starts, ends = _region_rows(regions)
    n = len(chroms)
    if length is None:
        length = ends[0] - starts[0] if n else 0
    if n == 0:
        return np.zeros((0, 4, length), dtype=np.float32)
    index = fasta.faidx.index
    seqs = []
    for chrom, start, end in zip(chroms, starts, ends):
        where = f"{chrom}:{start}-{end}"
        if end - start != length:
            raise input_error(
                path, where, f"region length {end - start} != {length}", "resize regions first"
            )
        if chrom not in index:
            raise input_error(path, chrom, "no such record in the FASTA", "use the FASTA's names")
        if start < 0 or end > index[chrom].rlen:
            raise input_error(
                path,
                where,
                f"region lies outside the contig (length {index[chrom].rlen})",
                "keep regions inside the chromosome",
            )
        seqs.append(fasta.faidx.fetch(chrom, start + 1, end))
    joined = "".join(seqs)
    if len(joined) != n * length:
        raise input_error(path, None, "short read from the FASTA", f"delete {path}.fai and retry")
    codes = _codes(joined).reshape(n, length)
    flags = codes >= _AMBIGUOUS
    if flags.any():
        bad = np.flatnonzero(codes.ravel() == _INVALID)
        if bad.size:
            row, off = divmod(int(bad[0]), length)
            letter = joined[int(bad[0])]
            raise input_error(
                path,
                f"{chroms[row]}:{starts[row] + off} (0-based)",
                f"invalid base {letter!r}",
                "use only ACGT, N or IUPAC ambiguity codes in the FASTA",
            )
        amb = codes == _AMBIGUOUS
        count = int(amb.sum())
        row = int(np.flatnonzero(amb.any(1))[0])
        warnings.warn(
            f"{path}: {count} IUPAC ambiguity code(s) treated as N; the first in "
            f"{chroms[row]}:{starts[row]}-{ends[row]}",
            stacklevel=2,
        )
    return _one_hot_codes(codes)


def n_runs(fasta, chrom, block=1 << 22):
    """Runs of ``N`` in one chromosome as ``(starts, ends)`` int64 arrays, read in blocks of ``block`` bp.

    Memory is set by the block size and the number of runs, not by the chromosome.
    """
    fasta = _as_fasta(fasta)
    size = int(fasta.faidx.index[chrom].rlen)
    starts, ends = [], []
    open_start = None  # start of a run that reaches the end of the previous block
    for lo in range(0, size, block):
        hi = min(lo + block, size)
        seq = fasta.faidx.fetch(chrom, lo + 1, hi)
        is_n = np.frombuffer(seq.encode("latin-1", errors="replace"), dtype=np.uint8)
        is_n = (is_n == ord("N")) | (is_n == ord("n"))
        edges = np.flatnonzero(np.diff(is_n.astype(np.int8), prepend=0, append=0))
        rs, re_ = edges[::2] + lo, edges[1::2] + lo
        if open_start is not None:
            if rs.size and rs[0] == lo:
                rs = rs.copy()
                rs[0] = open_start
            else:
                starts.append(np.array([open_start]))
                ends.append(np.array([lo]))
            open_start = None
        if re_.size and re_[-1] == hi and hi < size:
            open_start = int(rs[-1])
            rs, re_ = rs[:-1], re_[:-1]
        starts.append(rs)
        ends.append(re_)
    if not starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(starts).astype(np.int64), np.concatenate(ends).astype(np.int64)


__all__ = [
    "PlrpError",
    "chrom_sizes",
    "decode",
    "fetch_one_hot",
    "n_runs",
    "one_hot_encode",
    "open_fasta",
    "read_chrom_sizes",
    "write_chrom_sizes",
]
