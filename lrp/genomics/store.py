"""The relevance store: the one owner of the on-disk format of attributions (shards and gathered arrays).

Files (see docs/architecture.md "Files"), unchanged so that the workflow, modisco and tangermeme read them:

- **shard** ``.npz`` (one ``plrp attribute`` job): ``relevance``, ``hypothetical`` ``(n, 4, L)`` float32 (ACGT
  order), ``ohe`` ``(n, 4, L)`` int8, ``index`` ``(n,)`` int64 (region rows), ``target`` ``(n,)`` float32,
  ``layer_gini`` ``(n, n_layers)`` float32, ``layer_names`` ``(n_layers,)`` str;
- **gathered** ``relevance.npz`` (the same keys over all ``N`` regions in region order, uncompressed Zip64)
  and beside it ``relevance.npy``, ``hypothetical.npy``, ``ohe.npy`` ``(N, 4, L)``.

Writing: :func:`write_shard`; :func:`gather` (shards -> gathered files, memory set by one shard). Reading:
:func:`open_store` -> :class:`RelevanceStore`, whose big arrays are :class:`NpyRows` (rows read on demand with
ordinary file reads, so memory is set by the rows asked for, not by ``N``) and whose per-region arrays
(``index``, ``target``, ``layer_gini``: a few bytes per region) are loaded. :meth:`RelevanceStore.chunks`
gives row ranges of bounded size for the steps that walk all regions.
"""

import contextlib
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from lrp.core.atomic import atomic_path
from lrp.core.errors import PlrpError, input_error

log = logging.getLogger("plrp")

ARRAYS = ("relevance", "hypothetical", "ohe")  # (N, 4, L), each also a sibling .npy
SMALL = ("index", "target", "layer_gini", "layer_names", "p_pos")  # per region or per file: loaded
CHUNK_BYTES = 32 << 20  # bytes of one (N, 4, L) array read per chunk of rows by the steps


class Rows:
    """Lazy rows of an ``(N, *row_shape)`` array: subclasses give ``shape``, ``dtype``, ``read(lo, hi)`` and
    ``take(rows)``; this gives ``len()``, ``ndim`` and numpy-like indexing (``a[i]``, ``a[lo:hi]``,
    ``a[rows]``, ``a[i, :, s:e]``: the rows are read, the rest of the index applied in memory)."""

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def row_shape(self):
        return self.shape[1:]

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = (key[0] if key else slice(None)), key[1:]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"row {int(key)} out of range for {len(self)} rows")
            block = self.read(i, i + 1)[0]
        elif isinstance(key, slice):
            lo, hi, step = key.indices(len(self))
            block = self.read(lo, hi) if step == 1 else self.take(np.arange(lo, hi, step))
        else:
            key = np.asarray(key)
            block = self.take(np.flatnonzero(key) if key.dtype == bool else key)
        return block[(slice(None),) * (block.ndim - len(self.row_shape)) + rest] if rest else block

    def __array__(self, dtype=None, copy=None):
        out = self.read(0, len(self))
        return out if dtype is None else out.astype(dtype, copy=False)


class NpyRows(Rows):
    """Lazy rows of a C-order array stored at ``offset`` in ``path`` (a ``.npy`` file or an uncompressed npz
    member), read with ordinary file reads (seek + readinto) rather than a memory map, so the pages read
    never count in this process's RSS: memory is set by the rows asked for, not by the file.

    ``read(lo, hi)`` -> rows ``[lo, hi)``; ``take(rows)`` -> those rows (one read per run of consecutive
    rows); indexing as :class:`Rows`. ``as_dtype`` (e.g. float32 for a float16 file): rows are returned
    converted to it, ``dtype`` is then that type and ``file_dtype`` the stored one.
    """

    def __init__(self, path, offset, shape, dtype, as_dtype=None):
        self.path, self.offset = str(path), int(offset)
        self.shape, self.file_dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        self.dtype = np.dtype(as_dtype) if as_dtype is not None else self.file_dtype
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.file_dtype.itemsize

    def __repr__(self):
        return f"NpyRows({self.path!r}, shape={self.shape}, dtype={self.file_dtype})"

    def _read_into(self, handle, lo, out):
        handle.seek(self.offset + lo * self.row_bytes)
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = 0
        while got < len(view):
            n = handle.readinto(view[got:])
            if not n:
                raise PlrpError(f"{self.path}: file is shorter than its header says. Fix: regather")
            got += n

    def read(self, lo, hi):
        """Rows ``[lo, hi)`` as a new array (clipped to the array, like a slice)."""
        lo, hi = max(0, int(lo)), min(len(self), int(hi))
        out = np.empty((max(hi - lo, 0),) + self.row_shape, self.file_dtype)
        if out.size:
            with open(self.path, "rb") as handle:
                self._read_into(handle, lo, out)
        return out.astype(self.dtype, copy=False)

    def take(self, rows):
        """Rows ``rows`` (int array, any order; negative counts from the end) as a new array."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        rows = np.where(rows < 0, rows + len(self), rows)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        out = np.empty((rows.size,) + self.row_shape, self.file_dtype)
        if rows.size == 0:
            return out.astype(self.dtype, copy=False)
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        cut = np.flatnonzero(np.diff(srt) != 1) + 1  # runs of consecutive rows: one read each
        with open(self.path, "rb") as handle:
            if np.array_equal(order, np.arange(rows.size)):
                for a, b in zip(np.r_[0, cut].tolist(), np.r_[cut, srt.size].tolist()):
                    self._read_into(handle, int(srt[a]), out[a:b])
            else:
                tmp = np.empty_like(out)
                for a, b in zip(np.r_[0, cut].tolist(), np.r_[cut, srt.size].tolist()):
                    self._read_into(handle, int(srt[a]), tmp[a:b])
                out[order] = tmp
        return out.astype(self.dtype, copy=False)


class ProductRows(Rows):
    """Relevance derived lazily as ``hypothetical * ohe`` (float32), row by row: the store keeps only the
    hypothetical scores and the one-hot windows, and relevance is exactly their product (every method's
    relevance is the input times its hypothetical factor; checked bit for bit on the demo's methods)."""

    def __init__(self, hypothetical, ohe):
        if hypothetical.shape != ohe.shape:
            raise ValueError(f"hypothetical {hypothetical.shape} and ohe {ohe.shape} differ")
        self.hypothetical, self.ohe = hypothetical, ohe
        self.shape, self.dtype = tuple(hypothetical.shape), np.dtype(np.float32)

    def __repr__(self):
        return f"ProductRows({self.hypothetical!r} * {self.ohe!r})"

    @staticmethod
    def _product(h, o):
        return np.multiply(h, o, dtype=np.float32)

    def read(self, lo, hi):
        """Rows ``[lo, hi)`` of ``hypothetical * ohe``."""
        return self._product(self.hypothetical.read(lo, hi), self.ohe.read(lo, hi))

    def take(self, rows):
        """Rows ``rows`` of ``hypothetical * ohe``."""
        return self._product(self.hypothetical.take(rows), self.ohe.take(rows))


def _npy_header(handle):
    """Read a ``.npy`` header at the handle's position -> ``(shape, fortran, dtype)``; the data follow."""
    version = np.lib.format.read_magic(handle)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read_header is None:
        return None
    return read_header(handle)


def _npz_member_rows(path, key):
    """:class:`NpyRows` over ``key`` of an uncompressed npz; None when it is compressed (or not C-order)."""
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
        header = _npy_header(handle)
        offset = handle.tell()
    if header is None:
        return None
    shape, fortran, dtype = header
    if (fortran and len(shape) > 1) or dtype.hasobject:
        return None
    return NpyRows(path, offset, shape, dtype)


def open_npy_rows(path):
    """:class:`NpyRows` over a ``.npy`` file (a memmap for the rare Fortran-order or newer-format file)."""
    with open(path, "rb") as handle:
        header = _npy_header(handle)
        offset = handle.tell()
    if header is None or (header[1] and len(header[0]) > 1) or header[2].hasobject:
        return np.load(path, mmap_mode="r")
    shape, _, dtype = header
    rows = NpyRows(path, offset, shape, dtype, np.float32 if dtype == np.float16 else None)
    if Path(path).stat().st_size < offset + rows.shape[0] * rows.row_bytes:
        raise input_error(
            path, None, "file is shorter than its header says", "run `plrp gather` again"
        )
    return rows


COPY_BYTES = 8 << 20  # chunk of the streamed copies into relevance.npz


class RowFile:
    """A ``.npy`` of shape ``(n, *row_shape)`` written row range by row range with ordinary file writes at
    each range's byte offset (no memory map, so nothing written counts in this process's RSS)."""

    def __init__(self, handle, n, row_shape, dtype):
        self.handle, self.dtype = handle, np.dtype(dtype)
        self.shape = (int(n),) + tuple(int(k) for k in row_shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        header["shape"] = self.shape
        handle.seek(0)
        handle.truncate()
        try:
            np.lib.format.write_array_header_1_0(handle, header)
        except ValueError:  # header too long for format 1.0 (never for these shapes)
            np.lib.format.write_array_header_2_0(handle, header)
        self.offset = handle.tell()
        handle.truncate(self.offset + self.shape[0] * self.row_bytes)  # a sparse file of zeros

    def write_rows(self, index, rows):
        """Write ``rows`` (``(k, *row_shape)``) at region rows ``index`` (one write per consecutive run)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"rows of shape {rows.shape[1:]}, expected {self.shape[1:]}")
        if not self.row_bytes:  # e.g. layer_gini of a gradient method: (n, 0)
            return
        cut = np.flatnonzero(np.diff(index) != 1) + 1
        for a, b in zip(np.r_[0, cut].tolist(), np.r_[cut, index.size].tolist()):
            self.handle.seek(self.offset + int(index[a]) * self.row_bytes)
            self.handle.write(memoryview(rows[a:b]).cast("B"))


def _copy_member(zf, name, handle):
    """Stream ``handle`` (a whole ``.npy``, from its start) into ``name`` of the zip, in chunks."""
    handle.flush()
    handle.seek(0)
    with zf.open(name, "w", force_zip64=True) as member:
        shutil.copyfileobj(handle, member, COPY_BYTES)


def _npy_member(zf, name, array):
    """Write a small array as ``name`` of the zip."""
    with zf.open(name, "w", force_zip64=True) as member:
        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _arange_member(zf, name, n):
    """``np.arange(n, dtype=int64)`` as ``name`` of the zip, streamed in chunks."""
    step = COPY_BYTES // 8
    with zf.open(name, "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<i8", "fortran_order": False, "shape": (int(n),)}
        )
        for lo in range(0, n, step):
            member.write(np.arange(lo, min(lo + step, n), dtype="<i8").tobytes())


def _shard_index(path, n, regions):
    """Region rows of a shard, checked against the table's ``n`` regions."""
    try:
        with np.load(path) as shard:
            idx = np.asarray(shard["index"], dtype=np.int64).reshape(-1)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise PlrpError(
            f"{path}: not an attribution shard ({err}). Fix: rerun plrp attribute for it"
        ) from None
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise PlrpError(
            f"{path}: region index out of range for {regions} ({n} regions)."
            " Fix: rerun the attribution after changing the regions"
        )
    return idx


def write_shard(path, result):
    """Write one attribution shard ``.npz`` atomically.

    Parameters
    ----------
    path : str or Path
        The shard file.
    result : dict
        ``relevance``, ``hypothetical`` ``(n, 4, L)`` float32, ``ohe`` ``(n, 4, L)`` int8, ``index`` ``(n,)``
        int64, ``target`` ``(n,)``, ``layer_gini`` ``(n, n_layers)``, ``layer_names`` ``(n_layers,)``.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **result)


def shard_arrays(shard, key):
    """``key`` ``(n, 4, L)`` of an open shard; ``relevance`` is derived as ``hypothetical * ohe`` when the
    shard does not hold it (see :class:`ProductRows`)."""
    if key == "relevance" and "relevance" not in shard.files:
        return ProductRows._product(shard["hypothetical"], shard["ohe"])
    return shard[key]


def gather(shards, n, out_dir, regions="regions", keep=None, dtype="float32", arrays=ARRAYS):
    """Write the shards' rows in region order into ``{key}.npy`` for each of ``arrays`` and
    ``relevance.npz`` (the per-region arrays: index, target, layer_gini, layer_names), all atomically.

    Memory is set by one shard, not by the genome: each shard's rows go to their byte offset in the ``.npy``
    files with ordinary writes (small per-region arrays to anonymous temporary files beside them, then
    streamed into an uncompressed Zip64 ``relevance.npz``). The ``(N, 4, L)`` arrays are stored once, as
    ``.npy`` files (what modisco and tangermeme read), never again inside the npz.

    Parameters
    ----------
    shards : list of str
        Shard ``.npz`` files of one method (any order); together they must cover rows ``0..n-1`` once.
    n : int
        The number of regions ``N`` of the region table.
    out_dir : str or Path
        Folder of the gathered files.
    regions : str
        The region table's name, for messages.
    keep : array of int or None
        The region rows to store (sorted, unique; e.g. the windows selected for motif calling in
        genome-wide mode); None stores every row. The store's ``index`` is these rows.
    dtype : str
        ``float32`` or ``float16``: the stored type of ``relevance`` and ``hypothetical`` (``ohe`` is int8).
    arrays : tuple of str
        The ``(N, 4, L)`` arrays written (of :data:`ARRAYS`); without ``relevance`` the readers derive it
        as ``hypothetical * ohe``.
    """
    first = {}  # shard -> its first region row (shards are written in that order)
    seen = np.zeros(n, dtype=bool)  # 1 byte per region: the only per-genome array held
    for path in shards:
        idx = _shard_index(path, n, regions)
        srt = np.sort(idx)
        again = np.union1d(srt[1:][srt[1:] == srt[:-1]], idx[seen[idx]])
        if again.size:
            raise PlrpError(
                f"{path}: region rows given more than once (e.g. rows {again[:5].tolist()})."
                " Fix: give each shard once, all from one region table"
            )
        seen[idx] = True
        first[path] = int(srt[0]) if srt.size else -1
    if not seen.all():
        missing = np.flatnonzero(~seen)[:5].tolist()
        raise PlrpError(
            f"shards do not cover every region exactly once (missing e.g. rows {missing})."
            " Fix: rerun the missing shards"
        )
    del seen
    if keep is not None:
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        if keep.size and (np.any(np.diff(keep) <= 0) or keep[0] < 0 or keep[-1] >= n):
            raise PlrpError(
                f"kept rows must be sorted, unique region rows of {regions} (0..{n - 1})."
                " Fix: reselect the windows"
            )
    n_kept = n if keep is None else keep.size
    dtypes = {"relevance": np.dtype(dtype), "hypothetical": np.dtype(dtype), "ohe": np.int8}
    shards = sorted(shards, key=first.get)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        files, names, length = {}, None, None
        for path in shards:
            with np.load(path) as shard:
                idx = np.asarray(shard["index"], dtype=np.int64).reshape(-1)
                key = "relevance" if "relevance" in shard.files else "hypothetical"
                shape = shard[key].shape if key in shard.files else ()
                if len(shape) != 3 or shape[1] != 4 or (length is not None and shape[2] != length):
                    raise PlrpError(
                        f"{path}: {key} of shape {shape}, expected (n, 4, "
                        f"{length or 'L'}). Fix: rerun the attribution of every shard with one model"
                    )
                if not files:
                    length = shape[2]
                    names = shard["layer_names"]
                    for key in arrays:
                        tmp = stack.enter_context(atomic_path(out / f"{key}.npy"))
                        handle = stack.enter_context(open(tmp, "w+b"))
                        files[key] = RowFile(handle, n_kept, (4, length), dtypes[key])
                    for key, row_shape in (("target", ()), ("layer_gini", (len(names),))):
                        handle = stack.enter_context(tempfile.TemporaryFile(dir=out))
                        files[key] = RowFile(handle, n_kept, row_shape, np.float32)
                if list(shard["layer_names"]) != list(names):
                    raise PlrpError(
                        f"{path}: layers {list(shard['layer_names'])} differ from {list(names)}."
                        " Fix: rerun the attribution of every shard with one model and method"
                    )
                take = slice(None)
                if keep is not None:  # this shard's kept rows, at their place in the store
                    pos = np.minimum(np.searchsorted(keep, idx), max(keep.size - 1, 0))
                    take = np.flatnonzero(keep[pos] == idx) if keep.size else np.zeros(0, int)
                    idx = pos[take]
                if idx.size:
                    for key, rowfile in files.items():
                        try:
                            rowfile.write_rows(idx, shard_arrays(shard, key)[take])
                        except (KeyError, ValueError) as err:
                            raise PlrpError(
                                f"{path}: {key}: {err}. Fix: rerun the attribution of this shard"
                            ) from None
        tmp = stack.enter_context(atomic_path(out / "relevance.npz"))
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            if keep is None:
                _arange_member(zf, "index.npy", n)
            else:
                _npy_member(zf, "index.npy", keep)
            _copy_member(zf, "target.npy", files["target"].handle)
            _copy_member(zf, "layer_gini.npy", files["layer_gini"].handle)
            _npy_member(zf, "layer_names.npy", names)
    log.info("gathered %d shards, %d of %d regions (%s) -> %s", len(shards), n_kept, n, dtype, out)


# --------------------------------------------------------------------------------------------- reading
def _sibling(path, key):
    """The ``.npy`` beside the npz that holds ``key`` (``relevance.npz`` -> ``relevance.npy``, ``ohe.npy``)."""
    return path.with_suffix(".npy") if key == "relevance" else path.with_name(f"{key}.npy")


def _has(path, members, key):
    """Whether the store at ``path`` (npz members ``members``) holds ``key``, or can derive it."""
    if key in members or _sibling(path, key).exists():
        return True
    return key == "relevance" and all(_has(path, members, k) for k in ("hypothetical", "ohe"))


def _rows_of(path, key):
    """``key`` ``(N, 4, L)`` of a gathered store, lazily: its sibling ``.npy``, else the uncompressed npz
    member (stores gathered before the arrays left the npz), else (a compressed npz) the whole array
    loaded; relevance without a file of its own is ``hypothetical * ohe`` (:class:`ProductRows`)."""
    sibling = _sibling(path, key)
    if sibling.exists():
        return open_npy_rows(sibling)
    if key == "relevance" and all(_sibling(path, k).exists() for k in ("hypothetical", "ohe")):
        return ProductRows(_rows_of(path, "hypothetical"), _rows_of(path, "ohe"))
    try:
        arr = _npz_member_rows(path, key)
    except KeyError:
        raise input_error(path, key, "no such array", "run `plrp gather` again") from None
    except zipfile.BadZipFile:
        raise input_error(path, None, "not an npz file", "run `plrp gather` again") from None
    if arr is None:
        log.info("%s: compressed npz, loading %s into memory", path, key)
        with np.load(path) as z:
            arr = z[key]
    return arr


class RelevanceStore:
    """One method's gathered attributions, read by rows.

    Attributes
    ----------
    path : Path
        The ``relevance.npz``.
    relevance, hypothetical, ohe : NpyRows
        ``(N, 4, L)`` arrays read on demand (only those asked for in :func:`open_store`).
    index : ndarray, shape (N,)
        Region row of each store row (int64).
    target, layer_gini, layer_names
        The explained scalar ``(N,)``, the per-layer Gini ``(N, n_layers)`` and the layer names, when the
        store holds them (else absent from :attr:`small`).
    small : dict
        The loaded per-region arrays by name.
    """

    def __init__(self, path, arrays, small):
        self.path = Path(path)
        self.arrays, self.small = arrays, small
        for key, value in {**arrays, **small}.items():
            setattr(self, key, value)
        first = next(iter(arrays.values()))
        self.n, self.length = int(first.shape[0]), int(first.shape[2])

    def __len__(self):
        return self.n

    def chunk_rows(self, chunk_bytes=CHUNK_BYTES):
        """Rows per chunk so that one ``(rows, 4, L)`` float32 block is about ``chunk_bytes``."""
        return max(1, int(chunk_bytes) // (16 * max(self.length, 1)))

    def chunks(self, chunk_bytes=CHUNK_BYTES):
        """``(lo, hi)`` row ranges covering ``[0, N)`` in order, each :meth:`chunk_rows` rows at most."""
        step = self.chunk_rows(chunk_bytes)
        return [(lo, min(lo + step, self.n)) for lo in range(0, self.n, step)]

    def load(self):
        """Every array of the store, whole, as a dict (for the steps that need them all in memory, such
        as modisco): ``(N, 4, L)`` arrays as numpy arrays, plus the per-region ones."""
        return {**{k: np.asarray(v) for k, v in self.arrays.items()}, **self.small}


def open_store(path, keys=ARRAYS):
    """Open a gathered ``relevance.npz`` (and its sibling ``.npy`` files) for reading by rows.

    Parameters
    ----------
    path : str or Path
        The ``relevance.npz`` written by :func:`gather`.
    keys : tuple of str
        The ``(N, 4, L)`` arrays wanted (of :data:`ARRAYS`); they must exist and agree in shape.

    Returns
    -------
    RelevanceStore
        Lazy ``(N, 4, L)`` arrays and the loaded per-region ones (``index`` is required).

    Raises
    ------
    PlrpError
        A missing file or array, or shapes that disagree (one line naming the file and the array).
    """
    path = Path(path)
    if not path.is_file():
        raise input_error(path, None, "relevance file not found", "run `plrp gather` first")
    try:
        with np.load(path, allow_pickle=False) as z:
            members = set(z.files)
            missing = [k for k in (*keys, "index") if not _has(path, members, k)]
            if missing:
                raise input_error(
                    path, None, f"missing arrays {missing}", "run `plrp gather` again"
                )
            small = {k: z[k] for k in SMALL if k in members}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        if isinstance(err, PlrpError):
            raise
        raise input_error(
            path, None, f"not an npz file ({err})", "run `plrp gather` again"
        ) from None
    arrays = {k: _rows_of(path, k) for k in keys}
    shape = arrays[keys[0]].shape
    for k, arr in arrays.items():
        if len(arr.shape) != 3 or arr.shape[1] != 4 or arr.shape != shape:
            raise input_error(
                path, k, f"shape {arr.shape}, expected {shape} (N, 4, L)", "run `plrp gather` again"
            )
    if small["index"].shape != (shape[0],):
        raise input_error(
            path,
            "index",
            f"shape {small['index'].shape}, expected ({shape[0]},)",
            "run `plrp gather` again",
        )
    return RelevanceStore(path, arrays, small)


def open_relevance(path, n_regions=None, regions="regions"):
    """``(N, 4, L)`` relevance of a gathered ``relevance.npz``, lazily, as :class:`NpyRows`: the sibling
    ``relevance.npy`` when present, else the uncompressed npz member (a compressed npz is loaded).

    With ``n_regions`` given, ``N`` must be it (the region table ``regions`` the relevance indexes).
    """
    path = Path(path)
    if not path.exists() and not _has(path, (), "relevance"):
        raise input_error(path, None, "relevance file not found", "run `plrp gather` first")
    relevance = _rows_of(path, "relevance")
    if relevance.ndim != 3 or relevance.shape[1] != 4:
        raise input_error(
            path, "relevance", f"shape {relevance.shape}, expected (N, 4, L)", "regather"
        )
    if n_regions is not None and len(relevance) != n_regions:
        raise input_error(
            path,
            "relevance",
            f"{len(relevance)} rows for {n_regions} regions",
            f"regather the attributions for {regions}",
        )
    return relevance


class ShardRows(Rows):
    """``key`` of a method's attribution shards as one lazy ``(N, 4, L)`` array in region-row order (or
    ``(N, L)``: channel ``channel`` only), read straight from the shards without gathering them: each
    shard's member is read by rows like a ``.npy`` (shards are uncompressed npz), so memory is set by the
    rows asked for. ``relevance`` missing from a shard is ``hypothetical * ohe``.

    Used by ``plrp bigwig --shards`` in genome-wide mode: the per-base tracks stream from the shards, which
    are then deleted (Snakemake ``temp()``).
    """

    def __init__(self, shards, n, key="relevance", channel=None, regions="regions"):
        self.key, self.channel = key, channel
        self.owner = np.full(n, -1, dtype=np.int32)  # region row -> shard number
        self.local = np.zeros(n, dtype=np.int64)  # region row -> row in its shard
        self.parts = []
        for i, path in enumerate(shards):
            idx = _shard_index(path, n, regions)
            if np.any(self.owner[idx] >= 0) or np.unique(idx).size != idx.size:
                raise PlrpError(
                    f"{path}: region rows given more than once. Fix: give each shard once"
                )
            self.owner[idx], self.local[idx] = i, np.arange(idx.size)
            self.parts.append(self._member_rows(path))
        if np.any(self.owner < 0):
            missing = np.flatnonzero(self.owner < 0)[:5].tolist()
            raise PlrpError(
                f"shards do not cover every region exactly once (missing e.g. rows {missing})."
                " Fix: rerun the missing shards"
            )
        length = self.parts[0].shape[2] if self.parts else 0
        self.shape = (int(n), 4, int(length)) if channel is None else (int(n), int(length))
        self.dtype = np.dtype(np.float32)

    def _member_rows(self, path):
        def one(key):
            rows = _npz_member_rows(path, key)
            if rows is None:  # a compressed shard: its member loaded
                with np.load(path) as z:
                    rows = z[key]
            return rows

        with zipfile.ZipFile(path) as zf:
            members = {Path(n).stem for n in zf.namelist()}
        if self.key == "relevance" and "relevance" not in members:
            return ProductRows(one("hypothetical"), one("ohe"))
        return one(self.key)

    def take(self, rows):
        """Region rows ``rows`` (any order) of the shards' ``key``."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((rows.size,) + self.row_shape, np.float32)
        for shard in np.unique(self.owner[rows]).tolist():
            at = np.flatnonzero(self.owner[rows] == shard)
            part = self.parts[shard]
            local = self.local[rows[at]]
            block = part.take(local) if isinstance(part, Rows) else part[local]
            out[at] = block if self.channel is None else block[:, self.channel]
        return out

    def read(self, lo, hi):
        """Region rows ``[lo, hi)``."""
        return self.take(np.arange(max(0, int(lo)), min(len(self), int(hi))))


# ------------------------------------------------------------------------------------------- selection
def select_rows(target, top_fraction=None, min_target=None):
    """The windows kept for motif calling in genome-wide mode, chosen by the model's prediction.

    Parameters
    ----------
    target : ndarray, shape (N,)
        The explained scalar ``f_t(x)`` of every region row.
    top_fraction : float or None
        Keep the ``ceil(top_fraction * N)`` rows of highest target (ties: the lower row first).
    min_target : float or None
        Keep rows whose target is at least this (predicted bound). With both, a row must pass both.

    Returns
    -------
    ndarray, shape (n_kept,)
        Sorted region rows (int64).
    """
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    keep = np.ones(target.size, dtype=bool)
    if min_target is not None:
        keep &= target >= min_target
    if top_fraction is not None:
        k = int(np.ceil(float(top_fraction) * target.size))
        top = np.zeros(target.size, dtype=bool)
        top[np.argsort(-target, kind="stable")[:k]] = True
        keep &= top
    return np.flatnonzero(keep).astype(np.int64)


def rows_overlapping(regions, peaks):
    """Region rows whose window overlaps at least one peak (BED intervals, half-open).

    ``regions``, ``peaks``: DataFrames with chrom, start, end. Returns sorted int64 rows.
    """
    hit = np.zeros(len(regions), dtype=bool)
    for chrom, p in peaks.groupby("chrom", sort=False, observed=True):
        p = p.sort_values("start")
        s, e = p["start"].to_numpy(np.int64), p["end"].to_numpy(np.int64)
        reach = np.maximum.accumulate(e)  # the furthest end of the peaks starting at or before each
        mine = np.flatnonzero((regions["chrom"] == chrom).to_numpy())
        ws = regions["start"].to_numpy(np.int64)[mine]
        we = regions["end"].to_numpy(np.int64)[mine]
        j = np.searchsorted(s, we, side="left") - 1  # last peak starting before the window ends
        hit[mine] = (j >= 0) & (reach[np.maximum(j, 0)] > ws)
    return np.flatnonzero(hit).astype(np.int64)


def write_selection(path, rows, predicted=None):
    """Write the selected region rows (and the model's prediction of every region, when known) as
    ``selection.npz`` atomically: ``rows`` ``(n_kept,)`` int64, ``predicted`` ``(N,)`` float32."""
    arrays = {"rows": np.asarray(rows, dtype=np.int64)}
    if predicted is not None:
        arrays["predicted"] = np.asarray(predicted, dtype=np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_selection(path):
    """The selected region rows of a ``selection.npz`` (:func:`write_selection`), sorted int64."""
    try:
        with np.load(path) as z:
            rows = np.asarray(z["rows"], dtype=np.int64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise input_error(
            path, "rows", f"not a selection ({err})", "rerun plrp select-windows"
        ) from None
    return rows
