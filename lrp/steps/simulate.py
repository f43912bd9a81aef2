"""``plrp simulate``: the demo genome with JASPAR motifs planted at known sites (:mod:`lrp.demo.simulate`)."""

from lrp.core.errors import input_error
from lrp.demo.simulate import DEFAULT_PAIRS, simulate, simulate_to
from lrp.steps.cli import default


def _pair(text):
    parts = text.rsplit(",", 2)
    if len(parts) != 3 or not parts[2].strip().lstrip("-").isdigit():
        raise input_error(
            "simulate", f"--pairs {text}", "not FIRST,SECOND,GAP", "write e.g. TAL1::TCF3,GATA1,7"
        )
    return parts[0].strip(), parts[1].strip(), int(parts[2])


def arguments(parser):
    parser.add_argument(
        "--out-dir", required=True, help="directory for genome.fa, known_sites.bed, ..."
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=default(simulate, "seed"),
        help="random seed (same seed -> same bytes)",
    )
    parser.add_argument(
        "--chrom-lengths",
        type=int,
        nargs="+",
        default=list(default(simulate, "chrom_lengths")),
        help="chromosome lengths in bp (default 4 x 300000)",
    )
    parser.add_argument(
        "--tfs",
        nargs="+",
        default=list(default(simulate, "tfs")),
        help="JASPAR TF names or matrix IDs planted as single sites",
    )
    parser.add_argument(
        "--pairs",
        nargs="*",
        default=[",".join(map(str, p)) for p in DEFAULT_PAIRS],
        help="fixed-gap pairs FIRST,SECOND,GAP (default TAL1::TCF3,GATA1,7); none to omit",
    )
    parser.add_argument(
        "--density",
        type=float,
        default=default(simulate, "density"),
        help="mean planted sites per kb (clustered: most 1 kb windows still hold none)",
    )
    parser.add_argument(
        "--release", default=default(simulate, "release"), help="JASPAR release in pyjaspar"
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=default(simulate, "min_score"),
        help="minimum relative PWM score of a sampled site (0-1)",
    )
    parser.add_argument("--no-isochores", action="store_true", help="one GC level everywhere")


def main(args):
    simulate_to(
        args.out_dir,
        seed=args.seed,
        chrom_lengths=args.chrom_lengths,
        tfs=args.tfs,
        pairs=[_pair(p) for p in (args.pairs or [])],
        density=args.density,
        release=args.release,
        isochores=not args.no_isochores,
        min_score=args.min_score,
    )
