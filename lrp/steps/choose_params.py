"""``plrp choose-params``: resolve a method's ``rules: auto`` and ``p_pos: auto`` once per genome, model and
method (:func:`lrp.engine.auto.resolve`), so that every shard of ``plrp attribute`` explains with the same
choice.

The windows it looks at: ``--pool`` evenly spaced regions of the table, of which the ``--n-windows`` with the
highest explained target are kept (the deletion test needs windows where the model sees something; at genome
scale most tiles are background). The choice is a function of the model, the regions and ``--seed``.

Writes a JSON: ``params`` (the method's parameters with nothing left on auto, what ``plrp attribute
--resolved-params`` and ``plrp evaluate`` read), and ``record`` (what was chosen and every candidate's score:
the report shows it).
"""

import json
import logging
import time

import numpy as np

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError
from lrp.engine.methods import auto_keys, check_params, get_method
from lrp.steps.attribute import choose_on, explanation_arguments
from lrp.steps.cli import json_option, load_model_of, set_threads, threads_argument

log = logging.getLogger("plrp")

N_WINDOWS = 64
POOL = 256


def arguments(parser):
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--regions", required=True, help="region table (plrp regions)")
    explanation_arguments(parser)
    parser.add_argument(
        "--n-windows", type=int, default=N_WINDOWS, help="windows the choices are judged on"
    )
    parser.add_argument(
        "--pool", type=int, default=POOL, help="evenly spaced regions they are taken from"
    )
    threads_argument(parser)
    parser.add_argument("--out", required=True, help="JSON of the resolved parameters")


def choice_windows(fasta, regions, length, f, pool, n):
    """The windows the choices are judged on.

    Parameters
    ----------
    fasta, regions : str
        Genome FASTA and region table.
    length : int
        The model's input length.
    f : callable
        ``(n, 4, L) ACGT one-hot -> (n,)``, the explained scalar.
    pool, n : int
        Evenly spaced regions read, and how many of them (highest ``f`` first) are kept.

    Returns
    -------
    numpy.ndarray
        (min(n, pool, N), 4, L) float32 one-hot windows, ACGT, in region order.
    """
    from lrp.evaluation.metrics import evenly_spaced
    from lrp.genomics.genome import fetch_one_hot, open_fasta
    from lrp.genomics.regions import read_regions

    table = read_regions(regions)
    if not len(table):
        raise PlrpError(f"{regions}: no regions to choose the method's parameters on")
    rows = table.iloc[evenly_spaced(len(table), pool)]
    x = fetch_one_hot(open_fasta(fasta), rows, length)
    keep = np.sort(np.argsort(-f(x), kind="stable")[:n])
    return x[keep]


def main(args):
    from lrp.engine.model_io import check_model
    from lrp.engine.scoring import target_function

    get_method(args.method)
    set_threads(args.threads)  # the job's CPUs (SLURM: set-threads), as plrp attribute
    target = json_option(args.target, "--target")
    params = check_params(args.method, json_option(args.method_params, "--method-params"))
    model = load_model_of(args)
    check_model(model, args.length, target=target)
    record = {"method": args.method, "auto": []}
    if auto_keys(params):
        f = target_function(model, target, args.alphabet)
        x = choice_windows(args.fasta, args.regions, args.length, f, args.pool, args.n_windows)
        t0 = time.perf_counter()
        params, record = choose_on(args, model, x, target, params)
        log.info("chosen in %.1f s on %d windows", time.perf_counter() - t0, len(x))
    else:
        log.info("%s has no auto parameter: kept as given", args.method)
    with atomic_open(args.out, "w") as handle:
        json.dump({"params": params, "record": record}, handle, indent=1, sort_keys=True)


def read_choice(path):
    """A ``plrp choose-params`` JSON: ``{"params": ..., "record": ...}``."""
    try:
        with open(path) as handle:
            doc = json.load(handle)
        doc["params"], doc["record"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PlrpError(
            f"{path}: not a plrp choose-params file ({err}). Fix: rerun plrp choose-params"
        ) from None
    return doc


def read_resolved(path):
    """The ``params`` of a ``plrp choose-params`` JSON (p_layers entries as lists)."""
    return read_choice(path)["params"]
