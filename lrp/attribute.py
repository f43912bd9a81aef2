"""Attribution of one shard of regions, and gathering the shards of one method.

A shard is rows ``[k*S, (k+1)*S)`` of the region table. Its ``.npz`` holds ``relevance`` and
``hypothetical`` ``(n, 4, L)`` float32 in ACGT order, ``ohe`` ``(n, 4, L)`` int8, ``index`` ``(n,)`` (region
rows), ``target`` ``(n,)`` (the explained scalar), ``layer_gini`` ``(n, n_layers)`` (Gini sparsity of the
relevance at each linear layer's input; empty for gradient methods) and ``layer_names``.
"""

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lrp.atomic import atomic_path
from lrp.errors import PlrpError
from lrp.explain import Explainer

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
    )
    explainer.n_shuffles = int(params.pop("n_shuffles", 20))
    explainer.seed = seed
    if params:
        raise PlrpError(
            f"unknown method parameter(s) {', '.join(sorted(params))} for method {method}"
        )
    layered = method in ("lrp", "plrp-lambda", "plrp-m")
    out = {k: [] for k in ("relevance", "hypothetical", "target", "layer_gini")}
    names = []
    batches = range(0, x.shape[0], explainer.static_batch or batch_size)
    for start in tqdm(batches, desc=method, unit="batch", disable=not progress):
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


def _json(text, flag):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PlrpError(f"{flag}: not valid JSON ({err}): {text!r}") from None


def attribute_main(args):
    from lrp.genome import fetch_one_hot, open_fasta
    from lrp.model_io import check_model, load_model
    from lrp.regions import read_regions

    if args.threads:
        torch.set_num_threads(args.threads)
    regions = read_regions(args.regions)
    size = args.shard_size or len(regions)
    start, stop = args.shard * size, min((args.shard + 1) * size, len(regions))
    if start >= len(regions) and len(regions):
        raise PlrpError(
            f"{args.regions}: shard {args.shard} is empty ({len(regions)} regions, shard size "
            f"{size})"
        )
    rows = regions.iloc[start:stop]
    widths = (rows["end"] - rows["start"]).unique()
    if len(widths) and (len(widths) > 1 or widths[0] != args.length):
        raise PlrpError(
            f"{args.regions}: regions are {sorted(widths)} bp but the model takes "
            f"{args.length} bp. Fix: rerun plrp regions with --length {args.length}"
        )
    x = fetch_one_hot(open_fasta(args.fasta), rows, args.length)
    model = load_model(
        args.model, args.builder, _json(args.builder_kwargs, "--builder-kwargs"), args.trust_pickle
    )
    check_model(model, args.length)
    t0 = time.perf_counter()
    log.info("explaining regions %d-%d of %s with %s", start, stop, args.regions, args.method)
    result = attribute_regions(
        model,
        x,
        args.method,
        _json(args.target, "--target"),
        _json(args.method_params, "--method-params"),
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


def _open_npy(path, shape, dtype, stack):
    from numpy.lib.format import open_memmap

    tmp = stack.enter_context(atomic_path(path))
    return open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)


def gather_main(args):
    import contextlib

    from lrp.regions import read_regions

    n = len(read_regions(args.regions))
    shards = sorted(
        args.shards, key=lambda p: int(np.load(p)["index"][0]) if np.load(p)["index"].size else -1
    )
    seen = np.zeros(n, dtype=np.int64)
    first = np.load(shards[0])
    length = first["relevance"].shape[2]
    out = Path(args.out_dir)
    small = {"index": [], "target": [], "layer_gini": []}
    with contextlib.ExitStack() as stack:
        arrays = {
            k: _open_npy(
                out / f"{k}.npy", (n, 4, length), np.int8 if k == "ohe" else np.float32, stack
            )
            for k in ("relevance", "hypothetical", "ohe")
        }
        for path in shards:
            with np.load(path) as shard:
                idx = shard["index"]
                if idx.size and (idx.min() < 0 or idx.max() >= n):
                    raise PlrpError(
                        f"{path}: region index out of range for {args.regions} ({n} regions)."
                        " Fix: rerun the attribution after changing the regions"
                    )
                seen[idx] += 1
                for key, array in arrays.items():
                    array[idx] = shard[key]
                for key, parts in small.items():
                    parts.append(shard[key])
                names = shard["layer_names"]
        if (seen != 1).any():
            missing = np.flatnonzero(seen == 0)[:5].tolist()
            raise PlrpError(
                f"shards do not cover every region exactly once (missing e.g. rows {missing})."
                " Fix: rerun the missing shards"
            )
        for array in arrays.values():
            array.flush()
        order = np.argsort(np.concatenate(small["index"]))
        with atomic_path(out / "relevance.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                **arrays,
                index=np.concatenate(small["index"])[order],
                target=np.concatenate(small["target"])[order],
                layer_gini=np.concatenate(small["layer_gini"])[order],
                layer_names=names,
            )
