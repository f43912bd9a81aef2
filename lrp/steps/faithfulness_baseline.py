"""``plrp faithfulness-baseline``: the random-order deletion curves of the faithfulness metric, once per
genome and model (:func:`lrp.evaluation.metrics.faithfulness_baseline`); every method's ``plrp evaluate
--faith-baseline`` reads them and runs only its own relevance-ordered curve."""

import logging

import numpy as np

from lrp.evaluation import metrics
from lrp.evaluation.evaluate import model_fn, write_faith_baseline
from lrp.evaluation.metrics import evenly_spaced
from lrp.genomics.genome import fetch_one_hot, open_fasta
from lrp.genomics.regions import read_regions
from lrp.genomics.store import read_selection
from lrp.steps.cli import default, json_option, model_arguments

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
    parser.add_argument("--seed", type=int, default=default(faith, "seed"))
    parser.add_argument("--out", required=True, help="faithfulness_baseline.npz")


def main(args):
    regions = read_regions(args.regions, coords_only=True)
    stored = read_selection(args.selection) if args.selection else np.arange(len(regions))
    rows = stored[evenly_spaced(len(stored), args.faith_max_windows)]  # as plrp evaluate picks them
    length = int(regions["end"].iloc[0] - regions["start"].iloc[0]) if len(regions) else 0
    x = fetch_one_hot(open_fasta(args.fasta), regions.iloc[rows], length)
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
    write_faith_baseline(args.out, rows, base)
    log.info("faithfulness baseline: %d windows -> %s", len(rows), args.out)
