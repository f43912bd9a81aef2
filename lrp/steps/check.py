"""``plrp check``: every input of a genome and model read and validated before anything expensive runs.

The workflow runs it once per genome and model, and every attribution job waits for its report, so a bad
known-sites BED or MEME file stops the run before the first GPU hour instead of after the last shard. It
checks the FASTA (records, index, one line width per record: a full scan), the regions BED (or the tiled
chromosomes), the known-sites BED (TF names in column 4), the motif database (a MEME file), the model (it
loads, takes ``(N, 4, L)`` and has the configured target) and that the model's alphabet is an order of the
database's letters. Each problem is one line ``FILE: RECORD: PROBLEM. Fix: FIX``; all are reported, the first
as the error. The report (``--out``, JSON) lists what was checked.
"""

import json
import logging

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError, input_error
from lrp.steps.cli import json_option, load_model_of, model_arguments

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA (plain or bgzip)")
    parser.add_argument("--bed", help="BED of regions (else the genome is tiled)")
    parser.add_argument("--chroms", nargs="+", help="the chromosomes tiled")
    parser.add_argument(
        "--known-sites", help="known sites BED6 (chrom, start, end, TF, score, strand)"
    )
    parser.add_argument("--motif-db", help="the motif database (MEME)")
    model_arguments(parser)
    parser.add_argument("--length", type=int, required=True, help="model input length L (bp)")
    parser.add_argument("--out", required=True, help="the report (JSON) of what was checked")


def check_fasta(path):
    """Open and fully scan a FASTA -> ``{name: length}``; PlrpError for any problem.

    pyfaidx indexes a record whose last line is longer than its first and then reads wrong bases; the full
    scan (:func:`lrp.genomics.genome._unequal_lines`) finds it.
    """
    from lrp.genomics.genome import _check_compression, _unequal_lines, chrom_sizes, open_fasta

    fasta = open_fasta(path)
    where = _unequal_lines(str(path), _check_compression(str(path)))
    if where:
        raise input_error(
            path,
            where,
            "lines of unequal width inside a record (the index would read wrong bases)",
            f"rewrap every record to one width, e.g. seqkit seq -w 60 {path} > rewrapped.fa",
        )
    return chrom_sizes(fasta)


def _check_chroms(path, chroms, sizes):
    missing = [c for c in chroms or () if c not in sizes]
    if missing:
        raise input_error(
            path,
            missing[0],
            "a chromosome to tile is not in the FASTA",
            f"use the FASTA's record names in regions.tile.chroms (it has {', '.join(list(sizes)[:5])}"
            + (", ..." if len(sizes) > 5 else "")
            + ")",
        )
    return len(chroms or sizes)


def _check_model(args):
    from lrp.engine.model_io import check_model

    model = load_model_of(args)
    return [
        list(s)
        for s in check_model(model, args.length, target=json_option(args.target, "--target"))
    ]


def _check_alphabet(alphabet, motif_db):
    """The model's channel order must be an order of the database's letters (MEME: DNA, ``ACGT``)."""
    from lrp.engine.scoring import BASES, alphabet_order

    try:
        alphabet_order(alphabet)
    except PlrpError:
        raise input_error(
            "config",
            "alphabet",
            f"the model's alphabet {alphabet!r} is not an order of the motif database's letters "
            f"{BASES}" + (f" ({motif_db})" if motif_db else ""),
            "set the model's alphabet to its input channel order of A, C, G, T, e.g. ACGT",
        ) from None
    return alphabet.upper()


def run_checks(args):
    """Every check of ``plrp check`` -> ``(report, problems)``; a failed check does not stop the others."""
    from lrp.genomics.regions import read_bed
    from lrp.motifs.database import load_motif_db

    report, problems = {}, []

    def attempt(key, check):
        try:
            report[key] = check()
        except PlrpError as err:
            problems.append(" ".join(str(err).split()))
        except OSError as err:
            if err.filename is None:
                raise
            problems.append(
                f"{err.filename}: {err.strerror}. Fix: check the path and its permissions"
            )

    attempt("chromosomes", lambda: check_fasta(args.fasta))
    sizes = report.get("chromosomes")
    if args.bed:
        attempt("regions", lambda: len(read_bed(args.bed, sizes, "regions")))
    elif sizes is not None:
        attempt("regions", lambda: {"tiled": _check_chroms(args.fasta, args.chroms, sizes)})
    if args.known_sites:
        attempt(
            "known_sites",
            lambda: (
                read_bed(args.known_sites, sizes, "known sites", require_name=True)["name"]
                .value_counts()
                .sort_index()
                .to_dict()
            ),
        )
    if args.motif_db:
        attempt("motif_database", lambda: len(load_motif_db(args.motif_db)[0]))
    attempt("alphabet", lambda: _check_alphabet(args.alphabet, args.motif_db))
    attempt("model_outputs", lambda: _check_model(args))
    if isinstance(report.get("chromosomes"), dict):
        report["chromosomes"] = len(report["chromosomes"])
    return report, problems


def main(args):
    report, problems = run_checks(args)
    if problems:
        for problem in problems[1:]:
            log.error("check: also: %s", problem)
        raise PlrpError(problems[0])
    with atomic_open(args.out) as handle:
        json.dump(report, handle, indent=1, sort_keys=True)
        handle.write("\n")
    log.info("check: every input of %s and %s is valid -> %s", args.fasta, args.model, args.out)
