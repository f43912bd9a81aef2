"""``plrp logos``: motif, site and example-window logos (:mod:`lrp.report.logos`)."""

from pathlib import Path

from lrp.core.errors import input_error
from lrp.genomics.store import open_relevance
from lrp.motifs.calls import read_calls
from lrp.motifs.database import load_motif_db
from lrp.motifs.learned import read_npz
from lrp.report.logos import read_motif_table, write_logos
from lrp.steps.cli import default


def _method_paths(items):
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).parent.name, item
        out[name] = path
    return out


def arguments(parser):
    parser.add_argument(
        "--relevance",
        nargs="+",
        required=True,
        metavar="[NAME=]NPZ",
        help="relevance.npz per method (the first is the one --calls belongs to)",
    )
    parser.add_argument("--calls", required=True, help="calls TSV of the first method")
    parser.add_argument("--motifs", help="motifs.npz (plrp motifs)")
    parser.add_argument("--motif-table", help="motif_matches.tsv (plrp motifs)")
    parser.add_argument("--motif-db", help="motif database MEME (to draw the matches)")
    parser.add_argument(
        "--top-sites",
        type=int,
        default=default(write_logos, "top_sites"),
        help="called sites to draw",
    )
    parser.add_argument(
        "--n-examples",
        type=int,
        default=default(write_logos, "n_examples"),
        help="example windows to draw",
    )
    parser.add_argument(
        "--example-width",
        type=int,
        default=default(write_logos, "example_width"),
        help="bp of each example window",
    )
    parser.add_argument(
        "--max-motifs",
        type=int,
        default=default(write_logos, "max_motifs"),
        help="learned motifs to draw",
    )
    parser.add_argument(
        "--out-dir", required=True, help="folder for motifs/sites/examples .png/.svg"
    )


def main(args):
    paths = _method_paths(args.relevance)
    relevances = {m: open_relevance(p) for m, p in paths.items()}
    shapes = {m: r.shape for m, r in relevances.items()}
    if len(set(shapes.values())) > 1:
        raise input_error(
            ", ".join(paths.values()),
            None,
            f"relevance shapes differ: {shapes}",
            "give relevance files of the same region table",
        )
    write_logos(
        args.out_dir,
        relevances,
        read_calls(args.calls),
        motifs=read_npz(args.motifs) if args.motifs else [],
        table=read_motif_table(args.motif_table) if args.motif_table else None,
        db=load_motif_db(args.motif_db) if args.motif_db else None,
        top_sites=args.top_sites,
        n_examples=args.n_examples,
        example_width=args.example_width,
        max_motifs=args.max_motifs,
    )
