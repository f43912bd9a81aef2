"""``plrp train``: train the demo BPNet and export it (:mod:`lrp.demo.train`)."""

from lrp.steps.cli import default


def _train():
    from lrp.demo.train import train  # torch: imported when the command runs

    return train


def arguments(parser):
    train = _train()
    parser.add_argument("--fasta", required=True, help="simulated genome FASTA")
    parser.add_argument("--sites", required=True, help="known_sites.bed (BED6) of the simulation")
    parser.add_argument(
        "--out-dir", required=True, help="directory for model.pt2, model_state.pt, ..."
    )
    parser.add_argument("--seed", type=int, default=default(train, "seed"), help="random seed")
    parser.add_argument(
        "--length", type=int, default=default(train, "length"), help="input window length in bp"
    )
    parser.add_argument(
        "--epochs", type=int, default=default(train, "epochs"), help="training epochs"
    )
    parser.add_argument(
        "--windows-per-epoch",
        type=int,
        default=default(train, "windows_per_epoch"),
        help="training windows per epoch",
    )
    parser.add_argument(
        "--batch-size", type=int, default=default(train, "batch_size"), help="windows per batch"
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=default(train, "lr"),
        help="peak Adam learning rate (cosine decay to 0)",
    )
    parser.add_argument(
        "--filters", type=int, default=default(train, "filters"), help="convolution filters"
    )
    parser.add_argument(
        "--layers", type=int, default=default(train, "layers"), help="dilated residual layers"
    )
    parser.add_argument(
        "--counts-weight",
        type=float,
        default=default(train, "counts_weight"),
        help="weight of the counts loss (default: median reads per training window / 10)",
    )
    parser.add_argument(
        "--threads", type=int, default=default(train, "threads"), help="torch CPU threads"
    )
    parser.add_argument("--test-chrom", help="held-out chromosome (default: the last)")


def main(args):
    _train()(
        args.fasta,
        args.sites,
        args.out_dir,
        seed=args.seed,
        length=args.length,
        epochs=args.epochs,
        threads=args.threads,
        batch_size=args.batch_size,
        windows_per_epoch=args.windows_per_epoch,
        lr=args.lr,
        filters=args.filters,
        layers=args.layers,
        counts_weight=args.counts_weight,
        test_chrom=args.test_chrom,
    )
