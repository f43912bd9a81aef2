"""``plrp jaspar-meme``: a JASPAR selection (pyjaspar, offline) as a MEME file (:mod:`lrp.motifs.database`)."""

import logging

from lrp.motifs.database import select_motifs, write_meme
from lrp.steps.cli import default

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument(
        "--release", default=default(select_motifs, "release"), help="JASPAR release in pyjaspar"
    )
    parser.add_argument(
        "--collection",
        default=default(select_motifs, "collection"),
        help="JASPAR collection (default CORE)",
    )
    parser.add_argument(
        "--tax-group",
        default=default(select_motifs, "tax_group"),
        help="taxonomic group, e.g. vertebrates, plants, insects; 'all' for every taxon",
    )
    parser.add_argument(
        "--names", nargs="+", help="TF names (within the taxon) or matrix IDs; default all"
    )
    parser.add_argument("--out", required=True, help="MEME file to write")


def main(args):
    motifs, ids = select_motifs(args.release, args.collection, args.tax_group, args.names)
    write_meme(args.out, motifs, ids)
    log.info("wrote %d motifs to %s", len(motifs), args.out)
