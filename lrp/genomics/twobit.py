"""UCSC ``.2bit`` files from a FASTA (for assembly hubs), and a small reader.

Format (little-endian): header ``signature 0x1A412743, version, sequenceCount, reserved``; an index of
``nameSize (1 byte), name, offset`` (offset uint32, or uint64 in version 1); then per sequence ``dnaSize,
nBlockCount, nBlockStarts[], nBlockSizes[], maskBlockCount, maskBlockStarts[], maskBlockSizes[], reserved``
and the bases packed 4 per byte (T=0, C=1, A=2, G=3, first base in the high bits). Any letter other than
ACGT (N, IUPAC codes) becomes an N block; lower case becomes a mask block (soft-masking is kept).
"""

import struct
from pathlib import Path

import numpy as np

from lrp.core.atomic import atomic_path
from lrp.core.errors import input_error

SIGNATURE = 0x1A412743
BLOCK = 1 << 24  # bases read at a time (a multiple of 4)

_CODE = np.full(256, 255, dtype=np.uint8)  # 255: not ACGT -> N block
for _b, _c in zip("TCAG", range(4)):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _c
_LOWER = np.zeros(256, dtype=bool)
_LOWER[ord("a") : ord("z") + 1] = True


def _runs(mask, offset):
    """``(starts, ends)`` of the True runs of a boolean array, shifted by ``offset``."""
    d = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
    return np.flatnonzero(d == 1) + offset, np.flatnonzero(d == -1) + offset


class _Runs:
    """Runs collected block by block; a run touching the previous block's end is extended."""

    def __init__(self):
        self.starts, self.ends = [], []

    def add(self, starts, ends):
        if not len(starts):
            return
        if self.ends and self.ends[-1][-1] == starts[0]:
            self.ends[-1] = self.ends[-1].copy()
            self.ends[-1][-1] = ends[0]
            starts, ends = starts[1:], ends[1:]
        if len(starts):
            self.starts.append(starts)
            self.ends.append(ends)

    def arrays(self):
        if not self.starts:
            return np.zeros(0, np.uint32), np.zeros(0, np.uint32)
        s, e = np.concatenate(self.starts), np.concatenate(self.ends)
        return s.astype(np.uint32), (e - s).astype(np.uint32)


def _pack(codes):
    """Codes 0-3 -> bytes, 4 bases per byte, first base in the high bits (zero padded)."""
    pad = (-len(codes)) % 4
    if pad:
        codes = np.concatenate([codes, np.zeros(pad, np.uint8)])
    c = codes.reshape(-1, 4)
    return ((c[:, 0] << 6) | (c[:, 1] << 4) | (c[:, 2] << 2) | c[:, 3]).astype(np.uint8).tobytes()


def _record(fasta, name, size, out):
    """Write one sequence record of an open raw ``pyfaidx.Fasta`` to ``out``."""
    n_runs, mask_runs, packed = _Runs(), _Runs(), []
    for lo in range(0, size, BLOCK):
        raw = np.frombuffer(fasta[name][lo : min(size, lo + BLOCK)].encode("ascii"), np.uint8)
        codes = _CODE[raw]
        is_n = codes == 255
        n_runs.add(*_runs(is_n, lo))
        mask_runs.add(*_runs(_LOWER[raw], lo))
        codes[is_n] = 0
        packed.append(_pack(codes))
    n_starts, n_sizes = n_runs.arrays()
    m_starts, m_sizes = mask_runs.arrays()
    out.write(struct.pack("<II", size, len(n_starts)))
    out.write(n_starts.astype("<u4").tobytes() + n_sizes.astype("<u4").tobytes())
    out.write(struct.pack("<I", len(m_starts)))
    out.write(m_starts.astype("<u4").tobytes() + m_sizes.astype("<u4").tobytes())
    out.write(struct.pack("<I", 0))
    for chunk in packed:
        out.write(chunk)


def write_2bit(fasta_path, out_path):
    """Write the FASTA ``fasta_path`` as a ``.2bit`` file, atomically; returns ``{name: size}``.

    Version 0 (32-bit offsets) unless the file may pass 4 GiB, then version 1 (64-bit offsets).
    """
    import pyfaidx

    from lrp.genomics.genome import chrom_sizes

    sizes = chrom_sizes(fasta_path)  # validates the FASTA and its .fai
    names = [n.encode() for n in sizes]
    if any(len(n) > 255 for n in names):
        raise input_error(fasta_path, None, "a record name is over 255 bytes", "shorten it")
    fasta = pyfaidx.Fasta(str(fasta_path), as_raw=True, sequence_always_upper=False)
    estimate = sum(s // 4 + 32 for s in sizes.values()) + (1 << 28)  # room for the run tables
    version = 1 if estimate >= 1 << 32 else 0
    off_fmt = "<Q" if version else "<I"
    index_size = sum(1 + len(n) + struct.calcsize(off_fmt) for n in names)
    with atomic_path(out_path) as tmp, open(tmp, "wb") as out:
        out.write(struct.pack("<IIII", SIGNATURE, version, len(names), 0))
        out.write(b"\0" * index_size)
        offsets = []
        for name, size in sizes.items():
            offsets.append(out.tell())
            _record(fasta, name, size, out)
        if not version and offsets and offsets[-1] >= 1 << 32:
            raise input_error(fasta_path, None, "2bit offsets overflow", "report this bug")
        out.seek(16)
        for name, offset in zip(names, offsets):
            out.write(struct.pack("<B", len(name)) + name + struct.pack(off_fmt, offset))
    fasta.close()
    return sizes


def read_2bit(path):
    """``{name: sequence}`` of a ``.2bit`` file (N blocks as ``N``, mask blocks lower case)."""
    data = Path(path).read_bytes()
    signature, version, count, _ = struct.unpack_from("<IIII", data, 0)
    if signature != SIGNATURE:
        raise input_error(path, None, "not a 2bit file (bad signature)", "give a .2bit file")
    off_fmt = "<Q" if version else "<I"
    pos, index = 16, []
    for _ in range(count):
        n = data[pos]
        name = data[pos + 1 : pos + 1 + n].decode()
        (offset,) = struct.unpack_from(off_fmt, data, pos + 1 + n)
        index.append((name, offset))
        pos += 1 + n + struct.calcsize(off_fmt)
    letters = np.frombuffer(b"TCAG", np.uint8)
    out = {}
    for name, pos in index:
        size, n_count = struct.unpack_from("<II", data, pos)
        pos += 8
        n_blocks = np.frombuffer(data, "<u4", 2 * n_count, pos).reshape(2, -1)
        pos += 8 * n_count
        (m_count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        m_blocks = np.frombuffer(data, "<u4", 2 * m_count, pos).reshape(2, -1)
        pos += 8 * m_count + 4
        packed = np.frombuffer(data, np.uint8, (size + 3) // 4, pos)
        codes = np.stack([(packed >> s) & 3 for s in (6, 4, 2, 0)], axis=1).ravel()[:size]
        seq = letters[codes].copy()
        for s, n in zip(*n_blocks):
            seq[s : s + n] = ord("N")
        for s, n in zip(*m_blocks):
            seq[s : s + n] |= 0x20  # ASCII upper -> lower case
        out[name] = seq.tobytes().decode("ascii")
    return out
