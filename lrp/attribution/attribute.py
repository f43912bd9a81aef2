"""Attribution of one shard of regions with one method.

A shard is rows ``[k*S, (k+1)*S)`` of the region table; :func:`shard_windows` reads its one-hot windows and
:func:`attribute_regions` explains them. The shard file (``relevance`` and ``hypothetical`` ``(n, 4, L)``
float32 in ACGT order, ``ohe``, ``index``, ``target``, ``layer_gini`` (Gini sparsity of the relevance at each
linear layer's input; empty for gradient methods) and ``layer_names``) belongs to the relevance store,
:mod:`lrp.genomics.store`.
"""

import logging
import sys

import numpy as np

from lrp.attribution.memory import allocate_batch
from lrp.core.errors import PlrpError
from lrp.engine.methods import layered as is_layered
from lrp.engine.scoring import BASES, alphabet_order

# torch (and lrp.engine.explain, which imports it) are imported inside the functions that explain: `plrp gather`
# never needs them (~150 MiB of RSS).

log = logging.getLogger("plrp")


def gini(values):
    """Gini index of ``|values|`` per row: (N, D) -> (N,). 0 = flat, 1 = one entry holds everything."""
    v = np.sort(np.abs(np.asarray(values, dtype=np.float64)), axis=1)
    n = v.shape[1]
    total = v.sum(1)
    weights = 2 * np.arange(1, n + 1) - n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (v * weights).sum(1) / (n * total)
    return np.where(total > 0, g, 0.0)


def reverse_complement_ohe(a):
    """Reverse complement of ``(N, 4, L)`` arrays in ACGT order: channels ACGT -> TGCA and positions
    reversed. Its own inverse: it maps relevance of the reverse strand back onto the forward one."""
    return np.ascontiguousarray(np.asarray(a)[:, ::-1, ::-1])


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
    reverse_complement=False,
):
    """Explain one-hot windows ``x`` (N, 4, L) in ACGT order with ``method``.

    Parameters
    ----------
    model : torch.nn.Module or torch.export.ExportedProgram
        The loaded model (:func:`lrp.engine.model_io.load_model`).
    x : ndarray, shape (N, 4, L)
        One-hot windows, ACGT order.
    method : str
        A method of :data:`lrp.engine.methods.METHODS`.
    target, params : dict or None
        The explained output (:mod:`lrp.engine.target`) and the method's parameters.
    length : int or None
        Unused (the windows' ``L``); kept for callers that pass it.
    alphabet : str
        The model's channel order (:func:`lrp.engine.scoring.alphabet_order`).
    batch_size, device, seed, progress
        Windows per batch, ``auto``/``cpu``/``cuda``, the seed of every random step, a progress bar.
    reverse_complement : bool
        Also explain each window's reverse complement (:func:`reverse_complement_ohe`, in ACGT order, before
        the model's channel permutation), map its relevance back the same way and average the two;
        ``target`` and ``layer_gini`` are then the means of both strands too.

    Returns
    -------
    dict
        ``relevance``, ``hypothetical`` ``(N, 4, L)`` float32 in ACGT order, ``target`` ``(N,)``,
        ``layer_gini`` ``(N, n_layers)``, ``layer_names`` ``(n_layers,)``.
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
    layered = is_layered(method)
    out = {k: [] for k in ("relevance", "hypothetical", "target", "layer_gini")}
    names = []
    batches = range(0, x.shape[0], explainer.static_batch or batch_size)
    interval = 0.5 if sys.stderr.isatty() else 30  # a log file gets a line every 30 s, not a flood
    for start in tqdm(
        batches, desc=method, unit="batch", disable=not progress, mininterval=interval
    ):
        chunk = x[start : start + (explainer.static_batch or batch_size)]
        strands = [chunk] + ([reverse_complement_ohe(chunk)] if reverse_complement else [])
        parts = []
        for k, xs in enumerate(strands):
            xb = torch.as_tensor(np.ascontiguousarray(xs))[:, order]
            allocate_batch(xb.shape[0])
            res = explainer.explain_batch(xb, return_layers=layered)
            inverse = np.argsort(order)
            back = reverse_complement_ohe if k else (lambda a: a)  # the RC strand mapped back
            names = list(res.layers) if layered else []
            parts.append(
                {
                    "relevance": back(res.relevance.numpy()[:, inverse]),
                    "hypothetical": back(res.hypothetical.numpy()[:, inverse]),
                    "target": res.target.numpy(),
                    "layer_gini": np.stack(
                        [gini(res.layers[n].flatten(1).numpy()) for n in names], axis=1
                    ).astype(np.float32)
                    if layered
                    else np.zeros((xb.shape[0], 0), np.float32),
                }
            )
        for key, values in out.items():
            values.append(np.mean([p[key] for p in parts], axis=0, dtype=np.float64))
    result = {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}
    result["layer_names"] = np.array(names, dtype=str)
    return result


def shard_windows(fasta, regions, shard, shard_size, length):
    """The one-hot windows of shard ``shard`` of a region table.

    Parameters
    ----------
    fasta : str
        Genome FASTA.
    regions : str
        Region table (``plrp regions``); only the shard's rows are parsed when ``shard_size`` is given.
    shard, shard_size : int
        Shard ``k`` holds rows ``[k*S, (k+1)*S)``; ``shard_size`` 0 means one shard of all regions.
    length : int
        The model's input length ``L``: every region of the shard must be ``L`` bp.

    Returns
    -------
    x : ndarray, shape (n, 4, L)
        One-hot windows (float32, ACGT order; all-zero columns for N).
    start, stop : int
        The shard's region rows ``[start, stop)``.
    """
    from lrp.genomics.genome import fetch_one_hot, open_fasta
    from lrp.genomics.regions import count_regions, read_regions

    if shard_size:  # only this shard's rows are parsed
        size = shard_size
        start = shard * size
        rows = read_regions(regions, rows=(start, start + size))
        n_regions = start + len(rows) if len(rows) else count_regions(regions)
    else:
        rows = read_regions(regions)
        size = n_regions = len(rows)
        start = shard * size
        rows = rows.iloc[start : start + size]
    stop = start + len(rows)
    if start >= n_regions and n_regions:
        raise PlrpError(
            f"{regions}: shard {shard} is empty ({n_regions} regions, shard size {size})"
        )
    widths = (rows["end"] - rows["start"]).unique()
    if len(widths) and (len(widths) > 1 or widths[0] != length):
        raise PlrpError(
            f"{regions}: regions are {sorted(int(w) for w in widths)} bp but the model takes "
            f"{length} bp. Fix: rerun plrp regions with --length {length}"
        )
    return fetch_one_hot(open_fasta(fasta), rows, length), start, stop
