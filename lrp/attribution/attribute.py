"""Attribution of one shard of regions, and gathering the shards of one method.

A shard is rows ``[k*S, (k+1)*S)`` of the region table. Its ``.npz`` holds ``relevance`` and
``hypothetical`` ``(n, 4, L)`` float32 in ACGT order, ``ohe`` ``(n, 4, L)`` int8, ``index`` ``(n,)`` (region
rows), ``target`` ``(n,)`` (the explained scalar), ``layer_gini`` ``(n, n_layers)`` (Gini sparsity of the
relevance at each linear layer's input; empty for gradient methods) and ``layer_names``.
"""

import contextlib
import logging
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from lrp.core.atomic import atomic_path
from lrp.core.errors import PlrpError
from lrp.steps.cli import json_option

# torch (and lrp.engine.explain, which imports it) are imported inside the functions that explain: `plrp gather`
# never needs them (~150 MiB of RSS).

log = logging.getLogger("plrp")
BASES = "ACGT"


def gini(values):
    """Gini index of ``|values|`` per row: (N, D) -> (N,). 0 = flat, 1 = one entry holds everything."""
    v = np.sort(np.abs(np.asarray(values, dtype=np.float64)), axis=1)
    n = v.shape[1]
    total = v.sum(1)
    weights = 2 * np.arange(1, n + 1) - n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (v * weights).sum(1) / (n * total)
    return np.where(total > 0, g, 0.0)


def alphabet_order(alphabet):
    """Indices that turn ACGT channels into the model's alphabet order (``x_model = x[:, order]``)."""
    alphabet = alphabet.upper()
    if sorted(alphabet) != sorted(BASES):
        raise PlrpError(
            f"alphabet {alphabet!r} is not an order of A, C, G, T. Fix: e.g. alphabet: ACGT"
        )
    return [BASES.index(b) for b in alphabet]


def attribute_regions(
    model,
    x,
    method,
    target=None,
    params=None,
    length=None,
    alphabet=BASES,
    batch_size=64,
    device="auto",
    seed=0,
    progress=True,
):
    """Explain one-hot windows ``x`` (N, 4, L) in ACGT order with ``method``.

    Returns a dict of numpy arrays: relevance, hypothetical (N, 4, L) float32 in ACGT order, target (N,),
    layer_gini (N, n_layers), layer_names.
    """
    import torch
    from tqdm.auto import tqdm

    from lrp.engine.explain import Explainer

    params = dict(params or {})
    torch.manual_seed(seed)
    order = alphabet_order(alphabet)
    explainer = Explainer(
        model,
        x.shape[2],
        4,
        method,
        target,
        params.pop("p_pos", None),
        params.pop("p_neg", None),
        params.pop("p_layers", None),
        params.pop("rules", None),
        device,
        n_shuffles=params.pop("n_shuffles", None),
        seed=seed,
    )
    if params:
        raise PlrpError(
            f"unknown method parameter(s) {', '.join(sorted(params))} for method {method}. "
            "Fix: use p_pos, p_neg, p_layers, rules, n_shuffles"
        )
    layered = method in ("lrp", "plrp-lambda", "plrp-m")
    out = {k: [] for k in ("relevance", "hypothetical", "target", "layer_gini")}
    names = []
    batches = range(0, x.shape[0], explainer.static_batch or batch_size)
    interval = 0.5 if sys.stderr.isatty() else 30  # a log file gets a line every 30 s, not a flood
    for start in tqdm(
        batches, desc=method, unit="batch", disable=not progress, mininterval=interval
    ):
        xb = torch.as_tensor(x[start : start + (explainer.static_batch or batch_size)])[:, order]
        res = explainer.explain_batch(xb, return_layers=layered)
        inverse = np.argsort(order)
        out["relevance"].append(res.relevance.numpy()[:, inverse])
        out["hypothetical"].append(res.hypothetical.numpy()[:, inverse])
        out["target"].append(res.target.numpy())
        if layered:
            names = list(res.layers)
            out["layer_gini"].append(
                np.stack([gini(res.layers[k].flatten(1).numpy()) for k in names], axis=1).astype(
                    np.float32
                )
            )
        else:
            out["layer_gini"].append(np.zeros((xb.shape[0], 0), np.float32))
    result = {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}
    result["layer_names"] = np.array(names, dtype=str)
    return result


def attribute_arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", required=True, help="region table (plrp regions)")
    parser.add_argument("--shard", type=int, default=0, help="shard number k (rows k*S to (k+1)*S)")
    parser.add_argument("--shard-size", type=int, default=0, help="S; 0 = all regions")
    parser.add_argument(
        "--model", required=True, help=".pt2 program, or a state dict with --builder"
    )
    parser.add_argument(
        "--builder", help="'module:function' or 'file.py:function' building the model"
    )
    parser.add_argument(
        "--builder-kwargs", default="{}", help="JSON keyword arguments of the builder"
    )
    parser.add_argument("--trust-pickle", action="store_true", help="allow a pickled full module")
    parser.add_argument("--length", type=int, required=True, help="model input length L (bp)")
    parser.add_argument("--alphabet", default=BASES, help="the model's channel order")
    parser.add_argument(
        "--target", default="{}", help='JSON, e.g. {"output": "counts", "index": 0}'
    )
    parser.add_argument(
        "--method", required=True, help="lrp, plrp-lambda, plrp-m, gradient-x-input, deeplift-shap"
    )
    parser.add_argument(
        "--method-params", default="{}", help="JSON: p_pos, p_neg, p_layers, rules, n_shuffles"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for torch (0 = default)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="shard .npz")


def attribute_main(args):
    from lrp.engine.allocator import keep_freed_memory
    from lrp.engine.methods import METHODS
    from lrp.engine.model_io import check_model, load_model
    from lrp.genomics.genome import fetch_one_hot, open_fasta
    from lrp.genomics.regions import count_regions, read_regions

    if args.method not in METHODS:
        raise PlrpError(f"unknown method {args.method!r}. Fix: choose one of {', '.join(METHODS)}")
    target = json_option(args.target, "--target")
    params = json_option(args.method_params, "--method-params")
    builder_kwargs = json_option(args.builder_kwargs, "--builder-kwargs")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    keep_freed_memory()  # batch-sized buffers reuse their pages from batch to batch
    if args.shard_size:  # only this shard's rows are parsed
        size = args.shard_size
        start = args.shard * size
        rows = read_regions(args.regions, rows=(start, start + size))
        n_regions = start + len(rows) if len(rows) else count_regions(args.regions)
    else:
        rows = read_regions(args.regions)
        size = n_regions = len(rows)
        start = args.shard * size
        rows = rows.iloc[start : start + size]
    stop = start + len(rows)
    if start >= n_regions and n_regions:
        raise PlrpError(
            f"{args.regions}: shard {args.shard} is empty ({n_regions} regions, shard size {size})"
        )
    widths = (rows["end"] - rows["start"]).unique()
    if len(widths) and (len(widths) > 1 or widths[0] != args.length):
        raise PlrpError(
            f"{args.regions}: regions are {sorted(int(w) for w in widths)} bp but the model takes "
            f"{args.length} bp. Fix: rerun plrp regions with --length {args.length}"
        )
    x = fetch_one_hot(open_fasta(args.fasta), rows, args.length)
    model = load_model(args.model, args.builder, builder_kwargs, args.trust_pickle)
    check_model(model, args.length, target=target)
    t0 = time.perf_counter()
    log.info("explaining regions %d-%d of %s with %s", start, stop, args.regions, args.method)
    result = attribute_regions(
        model,
        x,
        args.method,
        target,
        params,
        args.length,
        args.alphabet,
        args.batch_size,
        args.device,
        args.seed,
    )
    seconds = time.perf_counter() - t0
    log.info(
        "%d regions in %.1f s (%.0f bp/s)",
        len(rows),
        seconds,
        len(rows) * args.length / max(seconds, 1e-9),
    )
    result["index"] = np.arange(start, stop, dtype=np.int64)
    result["ohe"] = x.astype(np.int8)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **result)


def gather_arguments(parser):
    parser.add_argument("--shards", nargs="+", required=True, help="shard .npz files of one method")
    parser.add_argument("--regions", required=True, help="region table the shards index")
    parser.add_argument(
        "--out-dir",
        required=True,
        help="writes relevance.npz, relevance.npy, hypothetical.npy, ohe.npy here",
    )


COPY_BYTES = 8 << 20  # chunk of the streamed copies into relevance.npz
GATHERED = {"relevance": np.float32, "hypothetical": np.float32, "ohe": np.int8}


class _RowFile:
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


def gather_main(args):
    """Write the shards' rows in region order into ``relevance.npy``, ``hypothetical.npy``, ``ohe.npy`` and
    ``relevance.npz`` (those three plus index, target, layer_gini, layer_names), all atomically.

    Memory is set by one shard, not by the genome: each shard's rows go to their byte offset in the ``.npy``
    files with ordinary writes (small per-region arrays to anonymous temporary files beside them), and the
    npz is built by streaming those files into an uncompressed (Zip64) archive.
    """
    from lrp.genomics.regions import count_regions

    n = count_regions(args.regions)
    first = {}  # shard -> its first region row (shards are written in that order)
    seen = np.zeros(n, dtype=bool)  # 1 byte per region: the only per-genome array held
    for path in args.shards:
        idx = _shard_index(path, n, args.regions)
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
    shards = sorted(args.shards, key=first.get)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        files, names, length = {}, None, None
        for path in shards:
            with np.load(path) as shard:
                idx = np.asarray(shard["index"], dtype=np.int64).reshape(-1)
                rel = shard["relevance"]
                if (
                    rel.ndim != 3
                    or rel.shape[1] != 4
                    or (length is not None and rel.shape[2] != length)
                ):
                    raise PlrpError(
                        f"{path}: relevance of shape {rel.shape}, expected (n, 4, "
                        f"{length or 'L'}). Fix: rerun the attribution of every shard with one model"
                    )
                if not files:
                    length = rel.shape[2]
                    names = shard["layer_names"]
                    for key, dtype in GATHERED.items():
                        tmp = stack.enter_context(atomic_path(out / f"{key}.npy"))
                        handle = stack.enter_context(open(tmp, "w+b"))
                        files[key] = _RowFile(handle, n, (4, length), dtype)
                    for key, row_shape in (("target", ()), ("layer_gini", (len(names),))):
                        handle = stack.enter_context(tempfile.TemporaryFile(dir=out))
                        files[key] = _RowFile(handle, n, row_shape, np.float32)
                if list(shard["layer_names"]) != list(names):
                    raise PlrpError(
                        f"{path}: layers {list(shard['layer_names'])} differ from {list(names)}."
                        " Fix: rerun the attribution of every shard with one model and method"
                    )
                if idx.size:
                    for key, rowfile in files.items():
                        try:
                            rowfile.write_rows(idx, rel if key == "relevance" else shard[key])
                        except (KeyError, ValueError) as err:
                            raise PlrpError(
                                f"{path}: {key}: {err}. Fix: rerun the attribution of this shard"
                            ) from None
                del rel
        tmp = stack.enter_context(atomic_path(out / "relevance.npz"))
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key in GATHERED:
                _copy_member(zf, f"{key}.npy", files[key].handle)
            _arange_member(zf, "index.npy", n)
            _copy_member(zf, "target.npy", files["target"].handle)
            _copy_member(zf, "layer_gini.npy", files["layer_gini"].handle)
            _npy_member(zf, "layer_names.npy", names)
    log.info("gathered %d shards, %d regions -> %s", len(shards), n, out)
