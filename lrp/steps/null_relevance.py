"""``plrp null-relevance``: one method's projected relevance on dinucleotide-shuffled copies of a seeded sample
of the windows the calls are made on: the shuffled null of ``plrp call-motifs`` (:mod:`lrp.motifs.null`).

The windows are explained as ``plrp attribute`` explains a shard (the same model, method, parameters resolved
by ``--resolved-params``, batch size, device, seed and strands), so the null is the method's relevance on
sequence that keeps each window's composition but holds no site. Windows mode: the sample is drawn from every
region; genome mode (``--selection``): from the selected windows, the ones the store holds.
"""

import logging

import numpy as np

from lrp.core.errors import PlrpError, input_error
from lrp.engine.methods import get_method
from lrp.motifs.null import null_rows, shuffled_windows, write_null_relevance
from lrp.steps.attribute import explain_windows, explanation_arguments
from lrp.steps.cli import default, json_option, load_model_of, set_threads, threads_argument

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", required=True, help="region table (plrp regions)")
    parser.add_argument(
        "--selection",
        help="genome mode: selection.npz (plrp select-windows), the windows calls are made on",
    )
    n = default(null_rows, "n_windows")
    parser.add_argument(
        "--null-windows",
        type=int,
        default=n,
        help=f"windows the null is shuffled from, a seeded sample (all when fewer; default {n})",
    )
    explanation_arguments(parser)
    threads_argument(parser)
    parser.add_argument("--out", required=True, help="null relevance .npz")


def main(args):
    from lrp.engine.allocator import keep_freed_memory
    from lrp.engine.model_io import check_model
    from lrp.genomics.genome import fetch_one_hot, open_fasta
    from lrp.genomics.regions import read_regions
    from lrp.genomics.store import read_selection

    get_method(args.method)  # an unknown method fails before any file is read
    target = json_option(args.target, "--target")
    params = json_option(args.method_params, "--method-params")
    json_option(args.builder_kwargs, "--builder-kwargs")
    if args.null_windows < 1:
        raise PlrpError(f"--null-windows {args.null_windows}: no windows. Fix: give 1 or more")
    set_threads(args.threads)
    keep_freed_memory()
    regions = read_regions(args.regions)
    rows = (
        read_selection(args.selection)
        if args.selection
        else np.arange(len(regions), dtype=np.int64)
    )
    if not len(rows):
        raise input_error(
            args.selection or args.regions, None, "no windows", "select or give some windows"
        )
    if rows.max() >= len(regions):
        raise input_error(
            args.selection,
            "rows",
            f"row {rows.max()} but {len(regions)} regions",
            "rerun plrp select-windows on this region table",
        )
    index = rows[null_rows(len(rows), args.null_windows, args.seed)]
    x = fetch_one_hot(open_fasta(args.fasta), regions.iloc[index], args.length)
    shuffled = shuffled_windows(x, args.seed)
    model = load_model_of(args)
    check_model(model, args.length, target=target)
    log.info(
        "null: %d dinucleotide-shuffled windows (of %d) explained with %s",
        len(index),
        len(rows),
        args.method,
    )
    result = explain_windows(args, model, shuffled, target, params, where=args.out)
    write_null_relevance(args.out, result["relevance"].sum(1), index, args.seed)
    log.info("null relevance -> %s", args.out)
