"""``plrp motifs``: seqlets aggregated into motifs (CWM, PFM), written as MEME with their database matches
(:mod:`lrp.motifs.learned`)."""

import logging
from pathlib import Path

from lrp.core.errors import input_error
from lrp.genomics.store import open_store
from lrp.motifs.calls import read_calls
from lrp.motifs.database import load_motif_db
from lrp.motifs.learned import (
    anchored_motifs,
    match_motifs,
    modisco_motifs,
    write_matches,
    write_matrices_meme,
    write_npz,
)
from lrp.steps.cli import default

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--relevance", required=True, help="gathered relevance.npz of one method")
    parser.add_argument("--calls", help="calls TSV (plrp call-motifs); needed by --method anchored")
    parser.add_argument("--motif-db", required=True, help="motif database, MEME (NAME = TF name)")
    parser.add_argument("--method", default="anchored", choices=("anchored", "modisco"))
    parser.add_argument(
        "--min-seqlets",
        type=int,
        default=default(anchored_motifs, "min_seqlets"),
        help="fewest seqlets per motif",
    )
    parser.add_argument(
        "--flank",
        type=int,
        default=default(anchored_motifs, "flank"),
        help="anchored: bp around the database motif",
    )
    parser.add_argument(
        "--include-negative",
        action="store_true",
        help="anchored: also aggregate negative-sign calls",
    )
    parser.add_argument(
        "--trim",
        type=float,
        default=default(match_motifs, "trim"),
        help="trim motif ends below this share of the max |CWM| column",
    )
    parser.add_argument(
        "--modisco-max-seqlets", type=int, default=default(modisco_motifs, "max_seqlets")
    )
    parser.add_argument(
        "--modisco-leiden-runs", type=int, default=default(modisco_motifs, "n_leiden_runs")
    )
    parser.add_argument("--modisco-window", type=int, default=default(modisco_motifs, "window"))
    parser.add_argument("--modisco-flank", type=int, default=default(modisco_motifs, "flank"))
    parser.add_argument("--out-meme", required=True, help="MEME of the learned PFMs")
    parser.add_argument("--out-tsv", required=True, help="TSV: each motif's best database match")
    parser.add_argument("--out-npz", required=True, help="CWM, hCWM and PFM arrays of each motif")
    parser.add_argument("--out-cwm-meme", help="MEME layout of the CWMs (signed values)")
    parser.add_argument(
        "--threads",
        type=int,
        default=default(match_motifs, "n_jobs"),
        help="TOMTOM threads (-1: all)",
    )


def main(args):
    store = open_store(args.relevance, keys=("relevance", "hypothetical", "ohe"))
    db = load_motif_db(args.motif_db)
    if args.method == "anchored":
        if not args.calls:
            raise input_error(
                "motifs",
                None,
                "--method anchored needs --calls",
                "give the calls TSV of plrp call-motifs, or --method modisco",
            )
        calls = read_calls(args.calls)
        if len(calls) and calls["row"].max() >= len(store):
            raise input_error(
                args.calls,
                None,
                "rows beyond the relevance arrays",
                "use the calls made from this relevance file",
            )
        motifs = anchored_motifs(
            store.arrays, calls, db, args.min_seqlets, args.flank, args.include_negative
        )
    else:  # modisco-lite holds every window in memory
        motifs = modisco_motifs(
            store.load(),
            args.modisco_max_seqlets,
            args.modisco_leiden_runs,
            args.modisco_window,
            args.modisco_flank,
            args.min_seqlets,
        )
    table = match_motifs(motifs, db, trim=args.trim, n_jobs=args.threads)
    write_matrices_meme(args.out_meme, motifs, "pfm")
    if args.out_cwm_meme:
        write_matrices_meme(args.out_cwm_meme, motifs, "cwm")
    write_npz(args.out_npz, motifs)
    write_matches(args.out_tsv, table)
    log.info("motifs: %d motifs -> %s", len(motifs), Path(args.out_meme))
