"""``plrp explain``: a quick look at one locus (or a few) before a genome run.

The same model options, methods and defaults as ``plrp attribute``, and the same windows: a region is
re-centred to the model's input length as the workflow re-centres a BED (:mod:`lrp.attribution.locus`), then
explained by :func:`lrp.attribution.attribute.attribute_regions`, so the relevance of a window equals the
workflow's for it. Writes into ``--out-dir``: ``relevance.npy``, ``hypothetical.npy``, ``ohe.npy``
(``(N, 4, L)`` float32, ACGT), ``windows.tsv``, ``relevance.bedGraph`` and a logo (``logo_ROW.png``/``.svg``)
of each of the first ``--max-logos`` windows.
"""

import logging
import time
from pathlib import Path

from lrp.attribution.locus import locus_windows, write_locus
from lrp.engine.methods import check_params, get_method
from lrp.report.locus_logo import write_locus_logo
from lrp.steps.attribute import explain_windows, explanation_arguments
from lrp.steps.cli import json_option, load_model_of

log = logging.getLogger("plrp")

MAX_LOGOS = 10


def arguments(parser):
    source = parser.add_argument_group("input (one of --region, --bed, --sequences)")
    source.add_argument("--fasta", help="genome FASTA (with --region or --bed)")
    source.add_argument(
        "--region",
        action="append",
        default=[],
        help="chr:start-end, 1-based inclusive as a genome browser shows it (commas allowed), or chr:pos; "
        "repeat for more",
    )
    source.add_argument("--bed", help="BED of regions (0-based, half-open)")
    source.add_argument(
        "--sequences", help="FASTA of sequences of at least --length bp (instead of --fasta)"
    )
    explanation_arguments(parser)
    parser.add_argument(
        "--max-logos", type=int, default=MAX_LOGOS, help="logos of the first windows only"
    )
    parser.add_argument(
        "--out-dir", required=True, help="folder for the arrays, bedGraph and logos"
    )


def main(args):
    from lrp.engine.model_io import check_model

    get_method(args.method)  # an unknown method or bad parameters fail before any file is read
    target = json_option(args.target, "--target")
    params = check_params(args.method, json_option(args.method_params, "--method-params"))
    json_option(args.builder_kwargs, "--builder-kwargs")
    x, windows, sizes = locus_windows(
        args.length, args.fasta, args.region, args.bed, args.sequences
    )
    model = load_model_of(args)
    check_model(model, args.length, target=target)
    log.info(
        "explaining %d window(s) of %d bp with %s %s", len(x), args.length, args.method, params
    )
    t0 = time.perf_counter()
    result = explain_windows(  # as plrp attribute: a batch that overflows the GPU is halved
        args, model, x, target, params, where=args.out_dir, progress=len(x) > args.batch_size
    )
    log.info("%d window(s) in %.1f s", len(x), time.perf_counter() - t0)
    out = Path(args.out_dir)
    write_locus(out, x, windows, sizes, result, args.method)
    n_logos = min(len(x), max(args.max_logos, 0))
    for row, w in enumerate(windows.head(n_logos).itertuples()):
        write_locus_logo(
            out,
            f"logo_{row}",
            result["relevance"][row],
            w.chrom,
            w.start,
            f"{w.name}  {w.chrom}:{w.start + 1:,}-{w.end:,}  {args.method}  "
            f"target {result['target'][row]:.3g}",
        )
    if n_logos < len(x):
        log.info("logos of the first %d of %d windows (--max-logos)", n_logos, len(x))
    log.info(
        "%s: relevance.npy, hypothetical.npy, ohe.npy (N, 4, L) float32 ACGT, windows.tsv, "
        "relevance.bedGraph, %d logo(s)",
        out,
        n_logos,
    )
