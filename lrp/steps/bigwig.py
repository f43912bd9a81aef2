"""``plrp bigwig``: the projected relevance of one method as a bigWig (:func:`lrp.genomics.tracks.write_bigwig`),
rows read from the relevance store, or (genome-wide mode, ``--shards``) straight from the attribution shards;
``--hypothetical-prefix`` also writes one bigWig of hypothetical scores per base (A, C, G, T)."""

import logging

from lrp.core.errors import PlrpError
from lrp.genomics.genome import chrom_sizes
from lrp.genomics.regions import read_regions
from lrp.genomics.store import ShardRows, open_relevance
from lrp.genomics.tracks import write_bigwig

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--relevance", help="relevance.npz of the store (every region row)")
    parser.add_argument("--shards", nargs="+", help="or: the attribution shards of one method")
    parser.add_argument("--regions", required=True, help="region table regions.bed")
    parser.add_argument("--fasta", required=True, help="genome FASTA (chromosome sizes)")
    parser.add_argument("--out", required=True, help="bigWig to write")
    parser.add_argument(
        "--hypothetical-prefix",
        help="with --shards: also write PREFIX{A,C,G,T}.bw, the hypothetical score of each base",
    )


def main(args):
    if bool(args.relevance) == bool(args.shards):
        raise PlrpError("bigwig: give --relevance or --shards (one of them). Fix: name one")
    if args.hypothetical_prefix and not args.shards:
        raise PlrpError("bigwig: --hypothetical-prefix needs --shards. Fix: give the shards")
    regions = read_regions(args.regions, coords_only=True)
    sizes = chrom_sizes(args.fasta)
    if args.shards:
        relevance = ShardRows(args.shards, len(regions), "relevance", regions=args.regions)
    else:
        relevance = open_relevance(args.relevance, len(regions), args.regions)
    write_bigwig(args.out, sizes, regions, relevance)
    log.info("wrote %s", args.out)
    if args.hypothetical_prefix:
        for channel, base in enumerate("ACGT"):
            rows = ShardRows(args.shards, len(regions), "hypothetical", channel, args.regions)
            write_bigwig(f"{args.hypothetical_prefix}{base}.bw", sizes, regions, rows)
        log.info("wrote %s{A,C,G,T}.bw", args.hypothetical_prefix)
