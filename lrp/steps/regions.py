"""``plrp regions``: a BED of regions, or whole chromosomes tiled, as a region table
(:func:`lrp.genomics.regions.make_regions`)."""

from lrp.genomics.regions import make_regions
from lrp.steps.cli import default


def arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--length", type=int, required=True, help="model input length L (bp)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bed", help="BED of regions, re-centred to L")
    source.add_argument("--tile", action="store_true", help="tile whole chromosomes")
    parser.add_argument("--step", type=int, help="tiling step (bp); default L // 2")
    parser.add_argument("--chroms", nargs="+", help="tile only these chromosomes")
    parser.add_argument(
        "--min-gap",
        type=int,
        default=default(make_regions, "min_gap"),
        help="N runs this long split tiling",
    )
    parser.add_argument(
        "--max-n-fraction",
        type=float,
        default=default(make_regions, "max_n_fraction"),
        help="drop tiles with more N than this",
    )
    parser.add_argument("--out", required=True, help="region table (BED6)")
    parser.add_argument("--gaps-out", help="BED of uncovered bases (N gaps) when tiling")
    parser.add_argument("--shard-size", type=int, help="regions per shard")
    parser.add_argument("--n-shards-out", help="write the number of shards here")
    parser.add_argument("--chrom-sizes-out", help="write the FASTA's chrom.sizes here")


def main(args):
    make_regions(
        args.fasta,
        args.length,
        args.out,
        bed=None if args.tile else args.bed,
        step=args.step,
        chroms=args.chroms,
        min_gap=args.min_gap,
        max_n_fraction=args.max_n_fraction,
        gaps_out=args.gaps_out,
        shard_size=args.shard_size,
        n_shards_out=args.n_shards_out,
        chrom_sizes_out=args.chrom_sizes_out,
    )
