"""The ``plrp`` command line: one subcommand per pipeline step, each implemented in its own module.

A command ``NAME`` is the module ``lrp.steps.NAME`` (``-`` in NAME becomes ``_``) with two functions:
``arguments(parser)`` adds its options and ``main(args)`` runs it. A step is thin: it parses its options and
calls into the library layers. Modules are imported only when their command runs, so ``plrp --help`` is
instant.
"""

import argparse
import importlib
import logging
import os
import sys
import traceback
import warnings

from lrp.core.errors import PlrpError

#: command -> one line of help; command ``NAME`` is the module ``lrp.steps.NAME`` (``-`` becomes ``_``)
COMMANDS = {
    "simulate": "simulate the demo genome with JASPAR motifs planted at known sites",
    "train": "train the demo CNN and save it as a .pt2 program and a state dict",
    "jaspar-meme": "write a JASPAR selection (pyjaspar, offline) as a MEME file",
    "regions": "validate a BED of regions, or tile whole chromosomes, into a region table",
    "check": "validate every input of a genome and model before anything expensive runs",
    "choose-params": "choose a method's rules: auto and p_pos: auto once, for all its shards",
    "attribute": "explain one shard of regions with one method",
    "explain": "explain one locus (a region, a BED or a FASTA of sequences): arrays, bedGraph, logos",
    "gather": "gather the shards of one method into one array file",
    "bigwig": "write the projected relevance of one method as a bigWig",
    "select-windows": "choose the windows genome-wide mode keeps arrays of (peaks or predicted bound)",
    "faithfulness-baseline": "the random-order deletion curves shared by every method's evaluate",
    "null-relevance": "explain dinucleotide-shuffled windows with one method: the null of the motif calls",
    "call-motifs": "call seqlets, annotate them with TOMTOM and write BED/TSV/bigBed",
    "motifs": "aggregate seqlets into motifs, write MEME and their database matches",
    "logos": "draw motif, site and example-window logos",
    "evaluate": "score the relevance and motif calls against the known sites",
    "report": "write the self-contained HTML report",
    "hub": "write a UCSC track hub and an IGV session for the tracks",
}

log = logging.getLogger("plrp")


def json_option(text, flag):
    """The value of a command-line option given as JSON; a bad one is a one-line error naming ``flag``."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PlrpError(f"{flag}: not valid JSON ({err}): {text!r}") from None


def model_arguments(parser, required=True, help=".pt2 program, or a state dict with --builder"):
    """The options that name a model and what of it is explained (``plrp attribute``, ``plrp evaluate``):
    ``--model --builder --builder-kwargs --trust-pickle --target --alphabet``."""
    from lrp.engine.scoring import BASES

    parser.add_argument("--model", required=required, help=help)
    parser.add_argument(
        "--builder", help="'module:function' or 'file.py:function' building the model"
    )
    parser.add_argument(
        "--builder-kwargs", default="{}", help="JSON keyword arguments of the builder"
    )
    parser.add_argument("--trust-pickle", action="store_true", help="allow a pickled full module")
    parser.add_argument(
        "--target", default="{}", help='JSON, e.g. {"output": "counts", "index": 0}'
    )
    parser.add_argument("--alphabet", default=BASES, help="the model's input channel order")


def threads_argument(parser):
    """``--threads``: the CPU threads torch uses (0: torch's default, every core); the rules give the job's
    CPUs, so parallel jobs do not share cores. Applied by :func:`set_threads`."""
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch (0 = torch's default, every core); give the job's CPUs",
    )


def set_threads(threads):
    """Give torch ``threads`` CPU threads (the :func:`threads_argument` option); 0 leaves its default."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def load_model_of(args):
    """The model the :func:`model_arguments` options name, loaded (``lrp.engine.model_io.load_model``)."""
    from lrp.engine.model_io import load_model

    return load_model(
        args.model,
        args.builder,
        json_option(args.builder_kwargs, "--builder-kwargs"),
        args.trust_pickle,
    )


def default(func, name):
    """The default of parameter ``name`` of the library function ``func``: the one place it is written
    (a step's option takes its default from the function it calls)."""
    import inspect

    value = inspect.signature(func).parameters[name].default
    if value is inspect.Parameter.empty:
        raise TypeError(f"{func.__qualname__}: parameter {name!r} has no default")
    return value


def _load(name):
    module = importlib.import_module(f"lrp.steps.{name.replace('-', '_')}")
    return module.arguments, module.main


def build_parser(command=None):
    """The top-level parser; with ``command`` given, that command's full options are added."""
    parser = argparse.ArgumentParser(prog="plrp", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # SUPPRESS: an unset subcommand flag keeps a `plrp --debug COMMAND` given before the command
        p.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show the full traceback on errors",
        )
        p.add_argument("--log", help="also write the log to this file")
        if name == command:
            arguments, main = _load(name)
            arguments(p)
            p.set_defaults(func=main)
    return parser


def _command_of(argv):
    return next((a for a in argv if a in COMMANDS), None)


def _one_line(text):
    """Collapse whitespace so a message is one line (nested library errors may hold newlines)."""
    return " ".join(str(text).split())


def _os_message(err):
    """One line for an OSError: the file, the problem and a fix."""
    where = err.filename or "?"
    if err.filename2:
        where = f"{where} -> {err.filename2}"
    problem = err.strerror or type(err).__name__
    if isinstance(err, FileNotFoundError):
        fix = "check the path"
    elif isinstance(err, PermissionError):
        fix = "check the permissions of the file and its folder"
    else:
        fix = "check the path, the free disk space and the permissions"
    return f"{where}: {problem}. Fix: {fix}"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Python warnings (e.g. IUPAC codes treated as N) as one log line instead of two stderr lines."""
    log.warning("%s: %s", category.__name__, _one_line(message))


def _same_file(stream, path):
    """Whether ``stream`` writes to the file at ``path``."""
    try:
        a, b = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    handlers = [logging.StreamHandler(sys.stderr)]
    # a rule's `--log {log} 2>>{log}` points both at one file: write each line once
    log_is_stderr = bool(getattr(args, "log", None)) and _same_file(sys.stderr, args.log)
    if getattr(args, "log", None) and not log_is_stderr:
        handlers.append(logging.FileHandler(args.log))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s plrp %(message)s", handlers=handlers
    )
    warnings.showwarning = _show_warning
    try:
        args.func(args)
    except (PlrpError, OSError) as err:
        if isinstance(err, OSError) and err.filename is None:
            raise  # not about a file the user gave: a bug or a system fault, keep the traceback
        if args.debug or log_is_stderr:
            traceback.print_exc()
        msg = _one_line(err if isinstance(err, PlrpError) else _os_message(err))
        # The log file keeps the traceback and the error; the terminal gets one line.
        for handler in handlers[1:]:
            handler.stream.write(traceback.format_exc())
            handler.stream.write(f"plrp {args.command}: error: {msg}\n")
            handler.flush()
        print(f"plrp {args.command}: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
