"""``plrp call-motifs``: seqlets of one method's relevance, labelled by TOMTOM, as BED9/TSV/bigBed
(:func:`lrp.motifs.calls.call_motifs`, relevance read from the store a block of rows at a time)."""

import logging
import tempfile
from pathlib import Path

from lrp.core.errors import input_error
from lrp.genomics.genome import chrom_sizes
from lrp.genomics.regions import read_regions
from lrp.genomics.store import open_store
from lrp.motifs.calls import (
    UNKNOWN,
    call_motifs,
    check_regions,
    write_bed,
    write_bigbed,
    write_tsv,
)
from lrp.motifs.database import load_motif_db
from lrp.motifs.null import NULLS, read_null_relevance
from lrp.report.colours import tf_colour
from lrp.steps.cli import default

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--relevance", required=True, help="gathered relevance.npz of one method")
    parser.add_argument("--regions", required=True, help="region table regions.bed (row = region)")
    parser.add_argument("--motif-db", required=True, help="motif database, MEME (NAME = TF name)")
    parser.add_argument("--fasta", required=True, help="genome FASTA (chromosome sizes)")
    parser.add_argument(
        "--out-bed", required=True, help="BED9 of calls (sorted, with a track line)"
    )
    parser.add_argument("--out-tsv", required=True, help="TSV of calls with every field")
    parser.add_argument("--out-bigbed", help="bigBed of the calls (.bb)")
    threshold = default(call_motifs, "threshold")
    parser.add_argument(
        "--threshold",
        type=float,
        default=threshold,
        help=f"recursive-seqlet p-value threshold: proposes the spans (a rank score; default {threshold:g})",
    )
    fdr = default(call_motifs, "fdr")
    parser.add_argument(
        "--fdr",
        type=float,
        default=fdr,
        help=f"target FDR of the calls under the null (>= 1: off, no null needed; default {fdr:g})",
    )
    null = default(call_motifs, "null")
    parser.add_argument(
        "--null-kind",
        choices=NULLS,
        default=null,
        help="shuffled: the method's relevance on dinucleotide-shuffled windows (--null-relevance); "
        f"laplace: a Laplace null fitted to the method's own window sums (default {null})",
    )
    parser.add_argument(
        "--null-relevance",
        help="the shuffled null: plrp null-relevance's .npz for this method (needed with --null-kind shuffled)",
    )
    parser.add_argument(
        "--width",
        type=int,
        default=default(call_motifs, "width"),
        help="bp of the windows whose relevance sums the null tests",
    )
    parser.add_argument(
        "--min-len",
        type=int,
        default=default(call_motifs, "min_len"),
        help="minimum seqlet length (bp)",
    )
    parser.add_argument(
        "--max-len",
        type=int,
        default=default(call_motifs, "max_len"),
        help="maximum seqlet length (bp)",
    )
    parser.add_argument(
        "--flank",
        type=int,
        default=default(call_motifs, "flank"),
        help="bp added to both seqlet ends",
    )
    parser.add_argument(
        "--trim",
        type=float,
        default=default(call_motifs, "trim"),
        help="trim seqlet ends below this fraction of the span's maximum (0: off)",
    )
    merge_gap = default(call_motifs, "merge_gap")
    parser.add_argument(
        "--merge-gap",
        type=int,
        default=merge_gap,
        help=f"join seqlets of one sign at most this many bp apart in a window (-1: off; default {merge_gap})",
    )
    parser.add_argument("--no-negative", action="store_true", help="do not call negative seqlets")
    parser.add_argument(
        "--max-q",
        type=float,
        default=default(call_motifs, "max_q"),
        help="label a call with its best match when TOMTOM q <= this; else unknown",
    )
    parser.add_argument("--max-seqlets", type=int, help="keep at most this many strongest seqlets")
    parser.add_argument(
        "--min-target",
        type=float,
        help="call only in windows whose explained output is at least this (e.g. 0 for a logit)",
    )
    parser.add_argument("--track-name", default=None, help="track name (default: BED file stem)")
    parser.add_argument(
        "--threads",
        type=int,
        default=default(call_motifs, "n_jobs"),
        help="TOMTOM threads (-1: all)",
    )


def main(args):
    store = open_store(args.relevance, keys=("relevance", "ohe"))
    regions = read_regions(args.regions)
    check_regions(regions, store.index, store.length, args.regions)
    sizes = chrom_sizes(args.fasta)
    unknown = sorted(set(regions["chrom"]) - set(sizes))
    if unknown:
        raise input_error(
            args.regions,
            None,
            f"contig {unknown[0]!r} is not in the FASTA",
            "use the region table made from this genome",
        )
    null_scores = None
    if args.null_kind == "shuffled" and args.fdr < 1:
        if not args.null_relevance:
            raise input_error(
                args.relevance,
                None,
                f"calls at FDR {args.fdr:g} under the shuffled null need the method's null relevance",
                "pass --null-relevance (plrp null-relevance), or --null-kind laplace, or --fdr 1 (no filter)",
            )
        null_scores = read_null_relevance(args.null_relevance, store.length)
    db = load_motif_db(args.motif_db)
    out = Path(args.out_tsv).parent
    out.mkdir(parents=True, exist_ok=True)
    # bedtools' temporaries go to the job's tmpdir (TMPDIR; Snakemake sets it from resources.tmpdir), not
    # beside the outputs, where a killed job would leave them for good
    with tempfile.TemporaryDirectory(prefix="plrp-bedtools.") as tmp:
        calls = call_motifs(
            store,
            regions,
            db,
            threshold=args.threshold,
            min_len=args.min_len,
            max_len=args.max_len,
            flank=args.flank,
            trim=args.trim,
            merge_gap=args.merge_gap,
            negative=not args.no_negative,
            fdr=args.fdr,
            width=args.width,
            null=args.null_kind,
            null_scores=null_scores,
            max_q=args.max_q,
            max_seqlets=args.max_seqlets,
            tmpdir=tmp,
            n_jobs=args.threads,
            min_target=args.min_target,
        )
    bad = calls[calls["end"].to_numpy() > calls["chrom"].map(sizes).to_numpy()]
    if len(bad):
        raise input_error(
            args.regions,
            None,
            "a call lies past its chromosome's end",
            "use the region table made from this genome",
        )
    name = args.track_name or Path(args.out_bed).stem
    write_tsv(args.out_tsv, calls)
    write_bed(args.out_bed, calls, tf_colour, track_name=name, description=f"{name}: motif calls")
    if args.out_bigbed:
        write_bigbed(args.out_bigbed, sizes, calls, tf_colour)
    n_lab = int((calls["name"] != UNKNOWN).sum())
    log.info("call-motifs: %d calls (%d labelled) -> %s", len(calls), n_lab, args.out_bed)
