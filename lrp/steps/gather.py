"""``plrp gather``: the shards of one method into the relevance store (:func:`lrp.genomics.store.gather`);
with ``--selection`` only the selected windows (genome-wide mode)."""

from lrp.genomics.regions import count_regions
from lrp.genomics.store import ARRAYS, gather, read_selection


def arguments(parser):
    parser.add_argument("--shards", nargs="+", required=True, help="shard .npz files of one method")
    parser.add_argument("--regions", required=True, help="region table the shards index")
    parser.add_argument(
        "--selection",
        help="selection.npz (plrp select-windows): keep only these windows (default: all)",
    )
    parser.add_argument(
        "--dtype", default="float32", choices=("float32", "float16"), help="stored float type"
    )
    parser.add_argument(
        "--arrays",
        nargs="+",
        default=list(ARRAYS),
        choices=ARRAYS,
        help="(N, 4, L) arrays written as .npy; relevance left out is read as hypothetical * ohe",
    )
    parser.add_argument(
        "--out-dir", required=True, help="writes relevance.npz and the --arrays .npy files here"
    )


def main(args):
    keep = read_selection(args.selection) if args.selection else None
    gather(
        args.shards,
        count_regions(args.regions),
        args.out_dir,
        args.regions,
        keep=keep,
        dtype=args.dtype,
        arrays=tuple(args.arrays),
    )
