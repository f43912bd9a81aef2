"""End to end through Snakemake: the demo (or a config given) run in a fresh folder, each step's share of
the wall time from the rules' ``benchmark:`` files, and the disk bytes per explained Mb of every method.

    .venv/bin/python benchmarks/pipeline.py [--config my.yaml | --preset bpnet300] [--mode windows|genome]
        [--dtype float16] [--cores 2] [--workdir DIR] [--out benchmarks/results/pipeline.json]

Presets: ``demo`` (config.yaml as shipped: simulate, train, seven methods on 599 windows) and ``bpnet300``
(the issue's larger run: 300 windows of the demo genome, a BPNet-sized model of random weights,
:class:`benchmarks.engine.BPNet`, 64 filters and 8 dilated layers, with its two heads (counts and profile)
as two models, the demo's seven methods; 14 method runs).

Prints a table (step, jobs, summed job seconds, seconds per job, share), the ratio of the non-attribution
steps (everything after ``attribute`` but the upstream set-up: simulate, train, jaspar_meme, regions, check)
to attribution, the per-job start-up floor (``plrp STEP --help`` of each step, i.e. the interpreter and the
step's imports, which every job pays) and the disk table; writes JSON. The machine may be shared: compare
runs made side by side (e.g. --mode windows and --mode genome in one sitting).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def step_seconds(workdir):
    """``{rule: (jobs, summed seconds)}`` from ``logs/benchmarks/**.tsv`` (the rule is named by the file
    or, for per-shard rules, by its folder)."""
    out = {}
    for tsv in (Path(workdir) / "logs/benchmarks").rglob("*.tsv"):
        rule = tsv.parent.name if tsv.parent.name in ("attribute",) else tsv.stem
        s = float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
        jobs, total = out.get(rule, (0, 0.0))
        out[rule] = (jobs + 1, total + s)
    return out


def disk_per_mb(pair_dir):
    """Bytes on disk per method folder and per explained Mb (bases the region table covers, once)."""
    from lrp.genomics.regions import read_regions
    from lrp.genomics.tracks import centre_crop

    regions = read_regions(Path(pair_dir) / "regions.bed", coords_only=True)
    ks, ke = centre_crop(regions)
    mb = float((ke - ks).sum()) / 1e6
    rows = {}
    for d in sorted(p for p in Path(pair_dir).iterdir() if (p / "relevance.npz").exists()):
        size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
        arrays = sum(
            f.stat().st_size
            for f in d.iterdir()
            if f.suffix in (".npy", ".npz") or f.name == "shards"
        )
        tracks = sum(f.stat().st_size for f in d.glob("*.bw"))
        rows[d.name] = {
            "bytes": size,
            "mb_per_mb": size / 1e6 / mb,
            "arrays": arrays,
            "tracks": tracks,
        }
    return mb, rows


UPSTREAM = {"simulate", "train", "jaspar_meme", "regions", "check", "attribute"}


def bpnet300_config(work, seed=0):
    """The ``bpnet300`` preset: write the genome (``plrp simulate`` with the demo's settings), a BPNet-sized
    model of random weights (state dict + builder) and its config into ``work``; return the config."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from engine import BPNet

    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    res = work / "resources/bpnet300"
    if not (res / "genome.fa").exists():
        sim = demo["simulate"]
        cmd = [str(BIN / "plrp"), "simulate", "--out-dir", str(res), "--seed", str(seed)]
        cmd += [
            "--chrom-lengths",
            *map(str, sim["chrom_lengths"]),
            "--density",
            str(sim["density"]),
        ]
        subprocess.run(cmd, check=True, cwd=work)
    kwargs = {"filters": 64, "n_layers": 8, "length": 1000}
    torch.manual_seed(seed)
    torch.save(BPNet(**kwargs).state_dict(), res / "bpnet_state.pt")
    model = {
        "path": str(res / "bpnet_state.pt"),
        "builder": f"{REPO / 'benchmarks/engine.py'}:BPNet",
        "kwargs": kwargs,
        "length": 1000,
        "alphabet": "ACGT",
    }
    return {
        "demo": False,
        "seed": seed,
        "genomes": {
            "sim": {
                "fasta": str(res / "genome.fa"),
                "known_sites": str(res / "known_sites.bed"),
                # 300 windows: chr4 (300 kb) tiled without overlap
                "regions": {"tile": {"step": 1000, "chroms": ["chr4"]}},
            }
        },
        "models": {
            "bpnet_counts": {**model, "target": {"output": 1, "index": 0}},
            "bpnet_profile": {**model, "target": {"output": 0, "reduction": "profile"}},
        },
        **{k: demo[k] for k in ("motif_database", "calls", "motifs", "evaluation", "methods")},
        "attribution": demo["attribution"],
    }


def startup_seconds(rules, repeats=2):
    """``{rule: seconds}`` of ``plrp STEP --help`` (best of ``repeats``): the interpreter start and the
    step's imports, paid by every job of the rule."""
    out = {}
    for rule in sorted(rules):
        step = rule.replace("_", "-")
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [str(BIN / "plrp"), step, "--help"], capture_output=True, check=False
            )
            best = min(best, time.perf_counter() - t0)
        if proc.returncode == 0:
            out[rule] = best
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="config YAML (default: the shipped demo config.yaml)")
    ap.add_argument("--preset", choices=("demo", "bpnet300"), default="demo")
    ap.add_argument("--mode", choices=("windows", "genome"), default="windows")
    ap.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--no-run",
        action="store_true",
        help="only read the benchmark files of a finished run in --workdir (wall time unknown)",
    )
    args = ap.parse_args(argv)
    name = Path(args.config).stem if args.config else args.preset
    work = Path(args.workdir or f"/tmp/plrp_pipeline_{name}_{args.mode}_{args.dtype}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not args.no_run:
        if args.preset == "bpnet300" and not args.config:
            config = bpnet300_config(work)
        else:
            config = yaml.safe_load(Path(args.config or REPO / "config.yaml").read_text())
        config["output"] = {**config.get("output", {}), "mode": args.mode, "dtype": args.dtype}
        (work / "bench_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
    cmd += ["--configfile", str(work / "bench_config.yaml"), "--replace-workflow-config"]
    cmd += ["--cores", str(args.cores)]
    env = {"PATH": f"{BIN}:/usr/bin:/bin"}
    wall = None
    if not args.no_run:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
    steps = step_seconds(work)
    total = sum(s for _, s in steps.values())
    startup = startup_seconds(steps)
    print(f"wall {wall or float('nan'):.0f} s on {args.cores} cores; summed job time {total:.0f} s")
    print(f"{'step':<24}{'jobs':>6}{'s':>9}{'s/job':>8}{'start-up':>10}{'share':>8}")
    for rule, (jobs, s) in sorted(steps.items(), key=lambda kv: -kv[1][1]):
        up = startup.get(rule)
        up = f"{up:10.2f}" if up is not None else f"{'':10s}"
        print(f"{rule:<24}{jobs:>6}{s:>9.1f}{s / jobs:>8.1f}{up}{s / total:>8.1%}")
    attribution = steps.get("attribute", (0, 0.0))[1]
    rest = sum(s for r, (_, s) in steps.items() if r not in UPSTREAM)
    jobs_after = sum(j for r, (j, _) in steps.items() if r not in UPSTREAM)
    startup_after = sum(startup.get(r, 0.0) * j for r, (j, _) in steps.items() if r not in UPSTREAM)
    print(f"non-attribution steps / attribution: {rest / max(attribution, 1e-9):.2f}")
    print(
        f"start-up floor of the {jobs_after} non-attribution jobs: {startup_after:.0f} s "
        f"({startup_after / max(rest, 1e-9):.0%} of their {rest:.0f} s)"
    )
    disk_pairs = {}
    for pair in sorted(p for p in (work / "results").glob("*/*") if (p / "regions.bed").is_file()):
        mb, disk = disk_per_mb(pair)
        disk_pairs[str(pair.relative_to(work / "results"))] = {"explained_mb": mb, "methods": disk}
        print(f"\ndisk per method, {pair.relative_to(work / 'results')} ({mb:.3f} Mb explained)")
        for method, row in disk.items():
            print(f"{method:<24}{row['bytes'] / 1e6:>9.2f} MB{row['mb_per_mb']:>9.2f} MB/Mb")
    doc = {
        "preset": None if args.config else args.preset,
        "config": args.config,
        "mode": args.mode,
        "dtype": args.dtype,
        "cores": args.cores,
        "wall_s": wall,
        "steps": {r: {"jobs": j, "s": s} for r, (j, s) in steps.items()},
        "share": {r: s / total for r, (_, s) in steps.items()},
        "startup_s": startup,
        "non_attribution_over_attribution": rest / max(attribution, 1e-9),
        "startup_floor_non_attribution_s": startup_after,
        "disk": disk_pairs,
        "median_mb_per_mb": float(
            np.median([r["mb_per_mb"] for p in disk_pairs.values() for r in p["methods"].values()])
        ),
    }
    out = Path(
        args.out or REPO / f"benchmarks/results/pipeline_{name}_{args.mode}_{args.dtype}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
