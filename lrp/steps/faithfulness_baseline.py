"""``plrp faithfulness-baseline``: the random-order deletion curves of the faithfulness metric
(:func:`lrp.evaluation.metrics.faithfulness_baseline`) and of the self-check's deletion test
(:func:`lrp.evaluation.selfcheck.deletion_baseline`), once per genome and model, in one npz; every
method's ``plrp evaluate --faith-baseline`` reads them and runs only its own relevance-ordered curves."""

import logging

import numpy as np

from lrp.evaluation import metrics, selfcheck
from lrp.evaluation.evaluate import model_fn, write_faith_baseline
from lrp.evaluation.metrics import evenly_spaced
from lrp.genomics.genome import fetch_one_hot, open_fasta
from lrp.genomics.regions import read_regions
from lrp.genomics.store import read_selection
from lrp.steps.cli import default, json_option, model_arguments, set_threads, threads_argument

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", required=True, help="region table regions.bed")
    parser.add_argument(
        "--selection", help="selection.npz (genome-wide mode): the windows the stores hold"
    )
    model_arguments(parser)
    faith = metrics.faithfulness_baseline
    parser.add_argument("--faith-steps", type=int, default=default(faith, "n_steps"))
    parser.add_argument("--faith-max-fraction", type=float, default=default(faith, "max_fraction"))
    parser.add_argument(
        "--faith-background", default=default(faith, "background"), choices=("uniform", "shuffle")
    )
    parser.add_argument("--faith-max-windows", type=int, default=512)
    parser.add_argument(
        "--selfcheck-windows",
        type=int,
        default=default(selfcheck.check_store, "max_windows"),
        help="the self-check's deletion test on at most this many windows (as plrp evaluate's)",
    )
    parser.add_argument("--seed", type=int, default=default(faith, "seed"))
    threads_argument(parser)
    parser.add_argument("--out", required=True, help="faithfulness_baseline.npz")


def main(args):
    regions = read_regions(args.regions, coords_only=True)
    stored = read_selection(args.selection) if args.selection else np.arange(len(regions))
    # the windows as plrp evaluate picks them from the store, for the faithfulness and the self-check
    rows = stored[evenly_spaced(len(stored), args.faith_max_windows)]
    check_rows = stored[evenly_spaced(len(stored), args.selfcheck_windows)]
    length = int(regions["end"].iloc[0] - regions["start"].iloc[0]) if len(regions) else 0
    fasta = open_fasta(args.fasta)
    x = fetch_one_hot(fasta, regions.iloc[rows], length)
    x_check = fetch_one_hot(fasta, regions.iloc[check_rows], length)
    set_threads(args.threads)
    f = model_fn(
        args.model,
        json_option(args.target, "--target"),
        args.alphabet,
        args.builder,
        json_option(args.builder_kwargs, "--builder-kwargs"),
        args.trust_pickle,
    )
    base = metrics.faithfulness_baseline(
        f, x, args.faith_steps, args.faith_max_fraction, args.faith_background, seed=args.seed
    )
    check = {"rows": check_rows, **selfcheck.deletion_baseline(f, x_check, seed=args.seed)}
    write_faith_baseline(args.out, rows, base, check)
    log.info(
        "faithfulness baseline: %d windows, self-check %d windows -> %s",
        len(rows),
        len(check_rows),
        args.out,
    )
