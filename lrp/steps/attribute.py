"""``plrp attribute``: explain one shard of regions with one method (:mod:`lrp.attribution.attribute`), written
as a shard of the relevance store (:func:`lrp.genomics.store.write_shard`)."""

import logging
import time

import numpy as np

from lrp.attribution.attribute import attribute_regions, shard_windows
from lrp.attribution.memory import with_smaller_batches
from lrp.engine.methods import get_method, method_names
from lrp.genomics.store import write_shard
from lrp.steps.cli import (
    default,
    json_option,
    load_model_of,
    model_arguments,
    set_threads,
    threads_argument,
)

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", required=True, help="region table (plrp regions)")
    parser.add_argument("--shard", type=int, default=0, help="shard number k (rows k*S to (k+1)*S)")
    parser.add_argument("--shard-size", type=int, default=0, help="S; 0 = all regions")
    explanation_arguments(parser)
    threads_argument(parser)
    parser.add_argument("--out", required=True, help="shard .npz")


def explanation_arguments(parser):
    """The model, method and device options every command that explains windows takes
    (``plrp attribute``, ``plrp explain``), with the defaults of ``attribute_regions``."""
    model_arguments(parser)
    parser.add_argument("--length", type=int, required=True, help="model input length L (bp)")
    parser.add_argument("--method", required=True, help=", ".join(method_names()))
    parser.add_argument(
        "--method-params", default="{}", help="JSON: p_pos, p_neg, p_layers, rules, n_shuffles"
    )
    parser.add_argument("--batch-size", type=int, default=default(attribute_regions, "batch_size"))
    parser.add_argument(
        "--device", default=default(attribute_regions, "device"), help="auto, cpu or cuda"
    )
    parser.add_argument("--seed", type=int, default=default(attribute_regions, "seed"))
    parser.add_argument(
        "--reverse-complement",
        action="store_true",
        help="also explain each window's reverse complement and average the two (mapped back)",
    )
    parser.add_argument(
        "--resolved-params",
        help="JSON of plrp choose-params: the method's rules/p_pos auto as chosen once for all shards "
        "(without it, auto is chosen on these windows)",
    )


def main(args):
    from lrp.engine.allocator import keep_freed_memory
    from lrp.engine.model_io import check_model

    get_method(args.method)  # an unknown method fails before any file is read
    target = json_option(args.target, "--target")
    params = json_option(args.method_params, "--method-params")
    json_option(args.builder_kwargs, "--builder-kwargs")
    set_threads(args.threads)
    keep_freed_memory()  # batch-sized buffers reuse their pages from batch to batch
    x, start, stop = shard_windows(
        args.fasta, args.regions, args.shard, args.shard_size, args.length
    )
    model = load_model_of(args)
    check_model(model, args.length, target=target)
    t0 = time.perf_counter()
    log.info("explaining regions %d-%d of %s with %s", start, stop, args.regions, args.method)
    result = explain_windows(args, model, x, target, params, where=args.out)
    seconds = time.perf_counter() - t0
    log.info(
        "%d regions in %.1f s (%.0f bp/s)",
        stop - start,
        seconds,
        (stop - start) * args.length / max(seconds, 1e-9),
    )
    result["index"] = np.arange(start, stop, dtype=np.int64)
    result["ohe"] = x.astype(np.int8)
    write_shard(args.out, result)


def explain_windows(args, model, x, target, params, where, progress=True):
    """``attribute_regions`` with the command's model and method options (as ``model_arguments`` and
    :func:`arguments` define them), retried at half the batch on a GPU out-of-memory error.

    ``x``: (N, 4, L) one-hot windows in ACGT order; ``where``: the output the log and errors name.
    Parameters left on ``auto`` are taken from ``--resolved-params``, or chosen on ``x`` itself.
    """
    params = resolved_params(args, model, x, target, params)
    result, _ = with_smaller_batches(
        lambda batch_size: attribute_regions(
            model,
            x,
            args.method,
            target,
            params,
            args.length,
            args.alphabet,
            batch_size,
            args.device,
            args.seed,
            progress=progress,
            reverse_complement=getattr(args, "reverse_complement", False),
        ),
        args.batch_size,
        where=where,
    )
    return result


def resolved_params(args, model, x, target, params):
    """``params`` with ``rules: auto`` / ``p_pos: auto`` replaced: by ``--resolved-params`` when given,
    else chosen on the windows ``x`` (N, 4, L, ACGT) themselves (:func:`choose_on`)."""
    from lrp.engine.methods import auto_keys, check_params

    params = check_params(args.method, params)
    if not auto_keys(params):
        return params
    if getattr(args, "resolved_params", None):
        from lrp.steps.choose_params import read_resolved

        return check_params(args.method, read_resolved(args.resolved_params))
    return choose_on(args, model, x, target, params)[0]


def choose_on(args, model, x, target, params):
    """:func:`lrp.engine.auto.resolve` on ACGT windows ``x`` (N, 4, L), judged by the deletion test
    (:func:`lrp.evaluation.selfcheck.deletion_gain`) with the command's seed, batch size and device.

    Returns ``(resolved params, record)``.
    """
    import torch

    from lrp.engine.auto import resolve
    from lrp.engine.scoring import alphabet_order, target_function
    from lrp.evaluation.selfcheck import deletion_gain

    torch.manual_seed(args.seed)
    f = target_function(model, target)  # on windows already in the model's channel order

    def judge(xs, scores):
        return float(np.nanmean(deletion_gain(f, xs, scores, seed=args.seed)))

    return resolve(
        model,
        torch.as_tensor(x[:, alphabet_order(args.alphabet)]),
        target,
        args.method,
        params,
        judge,
        n=getattr(args, "n_windows", len(x)),
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
    )
