"""``plrp select-windows``: the windows whose ``(N, 4, L)`` arrays genome-wide mode keeps for motif calling,
once per genome and model: those overlapping a BED of peaks, or those the model predicts as bound
(:func:`lrp.genomics.store.select_rows` on its prediction of every window, batched forward passes)."""

import logging

import numpy as np

from lrp.core.errors import PlrpError
from lrp.genomics.store import rows_overlapping, select_rows, write_selection
from lrp.steps.cli import json_option, model_arguments

log = logging.getLogger("plrp")
ROWS_PER_PASS = 4096  # windows read from the FASTA per block of forward passes


def arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", required=True, help="region table regions.bed")
    parser.add_argument("--peaks", help="BED of peaks: keep the windows overlapping one")
    model_arguments(parser, required=False, help="model: keep the windows it predicts as bound")
    parser.add_argument("--top-fraction", type=float, help="keep this share of highest prediction")
    parser.add_argument("--min-target", type=float, help="keep predictions of at least this")
    parser.add_argument("--out", required=True, help="selection.npz")


def main(args):
    from lrp.genomics.genome import chrom_sizes, fetch_one_hot, open_fasta
    from lrp.genomics.regions import read_bed, read_regions

    regions = read_regions(args.regions, coords_only=True)
    if args.peaks:
        peaks = read_bed(args.peaks, chrom_sizes(args.fasta), what="peaks")
        write_selection(args.out, rows_overlapping(regions, peaks))
        log.info("selected the windows overlapping %s -> %s", args.peaks, args.out)
        return
    if not args.model or (args.top_fraction is None and args.min_target is None):
        raise PlrpError(
            "select-windows: give --peaks, or --model with --top-fraction and/or --min-target."
            " Fix: set output.select in the config"
        )
    from lrp.evaluation.evaluate import model_fn

    f = model_fn(
        args.model,
        json_option(args.target, "--target"),
        args.alphabet,
        args.builder,
        json_option(args.builder_kwargs, "--builder-kwargs"),
        args.trust_pickle,
    )
    fasta = open_fasta(args.fasta)
    length = int(regions["end"].iloc[0] - regions["start"].iloc[0]) if len(regions) else 0
    predicted = np.empty(len(regions), np.float32)
    for lo in range(0, len(regions), ROWS_PER_PASS):
        block = regions.iloc[lo : lo + ROWS_PER_PASS]
        predicted[lo : lo + len(block)] = f(fetch_one_hot(fasta, block, length))
    rows = select_rows(predicted, args.top_fraction, args.min_target)
    write_selection(args.out, rows, predicted)
    log.info("selected %d of %d windows -> %s", len(rows), len(regions), args.out)
