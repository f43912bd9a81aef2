"""``plrp report``: the self-contained HTML report (:mod:`lrp.report.html`, igv.js view from
:mod:`lrp.report.igv`)."""

from lrp.report.html import build_report, write_report
from lrp.report.hub import named_paths
from lrp.report.igv import build_view
from lrp.steps.cli import default


def arguments(parser):
    parser.add_argument("--comparison", help="comparison.tsv (plrp evaluate --compare)")
    parser.add_argument("--comparison-json", help="comparison.json (per-TF call metrics)")
    parser.add_argument("--plots", nargs="*", default=[], metavar="[NAME=]IMG", help="plot images")
    parser.add_argument("--logos", nargs="*", default=[], metavar="[NAME=]IMG", help="logo images")
    parser.add_argument(
        "--motif-table",
        nargs="*",
        default=[],
        metavar="[NAME=]TSV",
        help="motif_matches.tsv per method",
    )
    parser.add_argument(
        "--motifs",
        nargs="*",
        default=[],
        metavar="[NAME=]NPZ",
        help="motifs.npz per method (their logos are drawn inline)",
    )
    parser.add_argument("--motif-db", help="motif database MEME (to draw the matches)")
    parser.add_argument(
        "--timings",
        nargs="*",
        default=[],
        metavar="[NAME=]DIR",
        help="folder of each method's attribution benchmark TSVs (Snakemake's; the s column is summed)",
    )
    parser.add_argument(
        "--figures-dir",
        help="also write every embedded comparison plot here (for snakemake --report)",
    )
    parser.add_argument(
        "--tracks",
        nargs="*",
        default=[],
        metavar="[NAME=]FILE",
        help="track files to link (bigWig, bigBed, BED, hub); missing ones are not linked",
    )
    parser.add_argument("--title", default=default(build_report, "title"))
    g = parser.add_argument_group("genome browser (igv.js, embedded; on with --igv-fasta)")
    g.add_argument("--igv-fasta", help="genome FASTA: adds the igv.js view")
    g.add_argument("--igv-bigwigs", nargs="*", default=[], metavar="[NAME=]BW", help="relevance")
    g.add_argument(
        "--igv-calls", nargs="*", default=[], metavar="[NAME=]BB", help="motif calls (bigBed/BED)"
    )
    g.add_argument("--igv-known-sites", help="known sites BED")
    g.add_argument("--igv-regions", help="explained regions BED (default: the first bigWig's)")
    g.add_argument(
        "--igv-genome-name", default=default(build_view, "genome_name"), help="genome name shown"
    )
    g.add_argument(
        "--igv-top",
        type=int,
        default=default(build_view, "top"),
        help="top loci listed (default 20)",
    )
    g.add_argument(
        "--igv-max-bases",
        type=int,
        default=default(build_view, "max_bases"),
        help="bp embedded (default 2,000,000)",
    )
    g.add_argument(
        "--igv-max-values",
        type=int,
        default=default(build_view, "max_values"),
        help="relevance values embedded over all tracks; sets the bin size (default 1,000,000)",
    )
    parser.add_argument("--out", required=True, help="report.html")


def main(args):
    igv = None
    if args.igv_fasta:
        igv = build_view(
            args.igv_fasta,
            named_paths(args.igv_bigwigs),
            named_paths(args.igv_calls),
            known_sites=args.igv_known_sites,
            regions=args.igv_regions,
            top=args.igv_top,
            max_bases=args.igv_max_bases,
            max_values=args.igv_max_values,
            genome_name=args.igv_genome_name,
        )
    write_report(
        args.out,
        args.comparison,
        args.comparison_json,
        args.plots,
        args.logos,
        args.motif_table,
        args.tracks,
        args.title,
        igv=igv,
        motifs=args.motifs,
        motif_db=args.motif_db,
        timings=args.timings,
        figures_dir=args.figures_dir,
    )
