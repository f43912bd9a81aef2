"""``plrp evaluate``: one method's relevance and motif calls scored against the known sites, or (``--compare``)
the methods compared (:mod:`lrp.evaluation.evaluate`)."""

import json
import logging
from pathlib import Path

import numpy as np

from lrp.core.errors import PlrpError
from lrp.engine.methods import METHODS, layered
from lrp.evaluation import metrics, selfcheck
from lrp.steps.cli import default, json_option, model_arguments, set_threads, threads_argument

# lrp.evaluation.evaluate (pandas) and lrp.report.comparison (matplotlib) are imported in main: the
# options need only the defaults of metrics and selfcheck (numpy), so `plrp evaluate --help` starts fast

log = logging.getLogger("plrp")


def arguments(parser):
    parser.add_argument("--relevance", help="gathered relevance.npz of one method")
    parser.add_argument("--regions", help="region table regions.bed")
    parser.add_argument(
        "--known-sites", help="known sites BED6 (chrom, start, end, TF, score, strand)"
    )
    parser.add_argument(
        "--chrom-sizes",
        help="the genome's chrom.sizes (plrp regions --chrom-sizes-out): known sites on other contigs "
        "or past a contig's end are errors",
    )
    parser.add_argument(
        "--fasta", help="the genome FASTA, instead of --chrom-sizes, to check the known sites"
    )
    parser.add_argument("--calls", help="motif calls TSV of this method (plrp call-motifs)")
    parser.add_argument(
        "--include-negative",
        action="store_true",
        help="score negative-sign calls too (default: positive calls only)",
    )
    parser.add_argument("--method", help="method name (default: the relevance file's folder name)")
    parser.add_argument(
        "--p-pos",
        type=float,
        help="the method's pruned share p+ (default: parsed from the name, lrp -> 0)",
    )
    parser.add_argument(
        "--family", help="line to draw this method on in the plots (e.g. plrp-lambda)"
    )
    parser.add_argument(
        "--method-params",
        default="{}",
        help="JSON: the method's parameters (plrp attribute's); its rules name the self-check's cause",
    )
    parser.add_argument(
        "--resolved-params",
        help="JSON of plrp choose-params: the parameters the method ran with (rules/p_pos auto chosen)",
    )
    model_arguments(
        parser,
        required=False,
        help="model (.pt2, or a state dict with --builder): enables the faithfulness metric",
    )
    threads_argument(parser)
    faith = metrics.faithfulness
    parser.add_argument(
        "--faith-steps", type=int, default=default(faith, "n_steps"), help="deletion steps"
    )
    parser.add_argument(
        "--faith-max-fraction",
        type=float,
        default=default(faith, "max_fraction"),
        help="largest share of positions deleted",
    )
    parser.add_argument(
        "--faith-background", default=default(faith, "background"), choices=("uniform", "shuffle")
    )
    parser.add_argument(
        "--faith-max-windows",
        type=int,
        default=512,
        help="faithfulness on at most this many windows (an evenly spaced subset)",
    )
    parser.add_argument(
        "--faith-baseline",
        help="faithfulness_baseline.npz (plrp faithfulness-baseline): the random-order curves of the"
        " faithfulness and the self-check, shared by every method (needs --model)",
    )
    parser.add_argument(
        "--selfcheck-windows",
        type=int,
        default=default(selfcheck.check_store, "max_windows"),
        help="the self-check's deletion test on at most this many windows (needs --model)",
    )
    parser.add_argument("--seed", type=int, default=default(faith, "seed"))
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="METRICS_JSON",
        help="compare methods: their metrics.json files (other inputs are then unused)",
    )
    parser.add_argument("--plots-dir", help="with --compare: folder for the comparison plots")
    parser.add_argument("--out-json", required=True, help="metrics.json (or comparison.json)")
    parser.add_argument("--out-tsv", required=True, help="metrics.tsv (or comparison.tsv)")


def main(args):
    from lrp.evaluation.evaluate import (
        compare,
        evaluate_method,
        method_p_pos,
        model_fn,
        plot_family,
        write_method,
    )

    if args.compare:
        from lrp.report.comparison import plot_comparison

        docs, table = compare(args.compare, args.out_json, args.out_tsv)
        if args.plots_dir:
            plot_comparison(docs, table, args.plots_dir)
        log.info("compare: %d methods -> %s", len(args.compare), args.out_tsv)
        if "selfcheck_flag" in table:
            for row in table[table["selfcheck_flag"].fillna(False).astype(bool)].itertuples():
                log.warning("WARNING self-check: %s", row.selfcheck_message)
        return
    missing = [f for f in ("relevance", "regions", "known_sites") if not getattr(args, f)]
    if missing:
        raise PlrpError(
            f"evaluate: missing --{missing[0].replace('_', '-')}. Fix: give it, or --compare"
        )
    from lrp.genomics.regions import read_bed, read_regions
    from lrp.genomics.store import open_store
    from lrp.motifs.calls import check_regions, read_calls

    sizes = None
    if args.chrom_sizes:
        from lrp.genomics.genome import read_chrom_sizes

        sizes = read_chrom_sizes(args.chrom_sizes)
    elif args.fasta:
        from lrp.genomics.genome import chrom_sizes

        sizes = chrom_sizes(args.fasta)
    # the small inputs first: a bad BED fails before the arrays are read
    sites = read_bed(args.known_sites, sizes, what="known sites", require_name=True)
    store = open_store(args.relevance, keys=("relevance", "ohe"))
    regions = read_regions(args.regions)
    check_regions(regions, store.index, store.length, args.regions)
    calls = read_calls(args.calls) if args.calls else None
    method = args.method or Path(args.relevance).parent.name
    params = json_option(args.method_params, "--method-params")
    chosen = None
    if args.resolved_params:
        from lrp.steps.choose_params import read_choice

        chosen = read_choice(args.resolved_params)
        params = chosen["params"]
    fields = composite_fields(params, chosen and chosen["record"], family=args.family)
    p_pos = args.p_pos
    if p_pos is None and not np.isnan(fields["auto_p"]):
        p_pos = fields["auto_p"]  # p_pos: auto plots at the mean of the per-layer p it chose
    p_pos = method_p_pos(method, p_pos, store.small.get("p_pos"))
    target = json_option(args.target, "--target")
    f, faith, shared = None, None, None
    if args.model:
        set_threads(args.threads)
        f = model_fn(
            args.model,
            target,
            args.alphabet,
            args.builder,
            json_option(args.builder_kwargs, "--builder-kwargs"),
            args.trust_pickle,
        )
        faith = {
            "n_steps": args.faith_steps,
            "max_fraction": args.faith_max_fraction,
            "background": args.faith_background,
            "seed": args.seed,
            "max_windows": args.faith_max_windows,
        }
        if args.faith_baseline:
            from lrp.evaluation.evaluate import read_faith_baseline

            faith["baseline"] = read_faith_baseline(args.faith_baseline)
            shared = faith["baseline"]["selfcheck"]
            if shared is None:
                raise PlrpError(
                    f"{args.faith_baseline}: no self-check curves (written by an older plrp)."
                    " Fix: rerun plrp faithfulness-baseline"
                )
    result = evaluate_method(
        store,
        regions,
        sites,
        calls,
        f=f,
        include_negative=args.include_negative,
        faith_kwargs=faith,
    )
    family = args.family or plot_family(method)
    check = selfcheck.check_store(
        store,
        result["scalars"],
        f,
        method,
        params.get("rules"),
        target,
        args.selfcheck_windows,
        args.seed,
        shared,
        kind=family,
    )
    result["selfcheck"] = check
    result["scalars"].update(selfcheck.fields(check))
    result["scalars"].update(fields)
    if chosen:
        result["auto"] = chosen["record"]
    if check["flagged"]:
        log.warning("WARNING self-check: %s", check["message"])
    write_method(result, method, p_pos, family, args.out_json, args.out_tsv)
    s = result["scalars"]
    log.info("evaluate %s: gini %.3f rma %.3f auprc %.3f", method, s["gini"], s["rma"], s["auprc"])


def composite_fields(params, record=None, family=None):
    """The ``composite`` and ``auto_p`` columns of ``metrics.tsv``: the LRP composite the method ran with
    (``default``, ``auto: NAME`` or the given rules as JSON; ``-`` outside the LRP family) and the mean
    per-layer p that ``p_pos: auto`` chose (NaN where p was given)."""
    record = record or {}
    if "rules" in (record.get("auto") or []):
        composite = f"auto: {record['rules']['choice']}"
    elif "rules" not in params and not (family in METHODS and layered(family)):
        composite = "-"
    elif params.get("rules") is None:
        composite = "default"
    else:
        composite = json.dumps(params["rules"], sort_keys=True)
    knee = record.get("p_layers")
    return {
        "composite": composite,
        "auto_p": float(np.mean(list(knee.values()))) if knee else float("nan"),
    }
