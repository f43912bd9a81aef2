"""``plrp hub``: a UCSC track hub and an IGV session for the tracks (:mod:`lrp.report.hub`)."""

from lrp.report.hub import named_paths, write_hub
from lrp.steps.cli import default


def arguments(parser):
    parser.add_argument(
        "--bigwigs", nargs="*", default=[], metavar="[NAME=]BW", help="relevance bigWigs"
    )
    parser.add_argument(
        "--bigbeds", nargs="*", default=[], metavar="[NAME=]BB", help="motif-call bigBeds"
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA (with or beside its .fai)")
    parser.add_argument("--known-sites", help="known sites BED6 (TF name in column 4)")
    parser.add_argument("--out-dir", required=True, help="folder of hub.txt and igv_session.xml")
    parser.add_argument(
        "--genome-name",
        default=default(write_hub, "genome_name"),
        help="name of the custom assembly (default demo)",
    )
    parser.add_argument(
        "--assembly",
        help="a UCSC/IGV assembly name (e.g. hg38) the FASTA is; then no 2bit is written",
    )
    parser.add_argument("--hub-name", help="hub identifier (default plrp_GENOME)")
    parser.add_argument("--label", help="hub label (default 'plrp GENOME')")
    parser.add_argument("--email", default=default(write_hub, "email"), help="contact in hub.txt")
    parser.add_argument(
        "--copy", action="store_true", help="copy the tracks into the hub (a self-contained folder)"
    )
    parser.add_argument(
        "--percentile",
        type=float,
        default=default(write_hub, "percentile"),
        help="view limits: this percentile of |relevance| (default 99.9)",
    )


def main(args):
    write_hub(
        args.out_dir,
        args.fasta,
        named_paths(args.bigwigs),
        named_paths(args.bigbeds),
        known_sites=args.known_sites,
        genome_name=args.genome_name,
        assembly=args.assembly,
        hub_name=args.hub_name,
        label=args.label,
        email=args.email,
        copy=args.copy,
        percentile=args.percentile,
    )
