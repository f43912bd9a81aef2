"""End to end through Snakemake: the demo (or a config given) run in a fresh folder, each step's share of
the wall time from the rules' ``benchmark:`` files, and the disk bytes per explained Mb of every method.

    .venv/bin/python benchmarks/pipeline.py [--config my.yaml] [--mode windows|genome] [--dtype float16]
        [--cores 2] [--workdir DIR] [--out benchmarks/results/pipeline.json]

Prints a table (step, jobs, summed job seconds, share) and the disk table, writes JSON. The machine may be
shared: compare runs made side by side (e.g. --mode windows and --mode genome in one sitting).
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="config YAML (default: the shipped demo config.yaml)")
    ap.add_argument("--mode", choices=("windows", "genome"), default="windows")
    ap.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    config = yaml.safe_load(Path(args.config or REPO / "config.yaml").read_text())
    config["output"] = {**config.get("output", {}), "mode": args.mode, "dtype": args.dtype}
    work = Path(args.workdir or f"/tmp/plrp_pipeline_{args.mode}_{args.dtype}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "bench_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
    cmd += ["--configfile", str(work / "bench_config.yaml"), "--replace-workflow-config"]
    cmd += ["--cores", str(args.cores)]
    env = {"PATH": f"{BIN}:/usr/bin:/bin"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    steps = step_seconds(work)
    total = sum(s for _, s in steps.values())
    print(f"wall {wall:.0f} s on {args.cores} cores; summed job time {total:.0f} s")
    print(f"{'step':<24}{'jobs':>6}{'s':>9}{'share':>8}")
    for rule, (jobs, s) in sorted(steps.items(), key=lambda kv: -kv[1][1]):
        print(f"{rule:<24}{jobs:>6}{s:>9.1f}{s / total:>8.1%}")
    attribution = steps.get("attribute", (0, 0.0))[1]
    upstream = {"simulate", "train", "jaspar_meme", "regions", "check", "attribute"}
    rest = sum(s for r, (_, s) in steps.items() if r not in upstream)
    print(f"non-attribution steps / attribution: {rest / max(attribution, 1e-9):.2f}")
    pair = next((work / "results").glob("*/*"))
    mb, disk = disk_per_mb(pair)
    print(f"\ndisk per method ({mb:.3f} Mb explained)")
    for method, row in disk.items():
        print(f"{method:<24}{row['bytes'] / 1e6:>9.2f} MB{row['mb_per_mb']:>9.2f} MB/Mb")
    doc = {
        "mode": args.mode,
        "dtype": args.dtype,
        "cores": args.cores,
        "wall_s": wall,
        "steps": {r: {"jobs": j, "s": s} for r, (j, s) in steps.items()},
        "non_attribution_over_attribution": rest / max(attribution, 1e-9),
        "explained_mb": mb,
        "disk": disk,
        "median_mb_per_mb": float(np.median([r["mb_per_mb"] for r in disk.values()])),
    }
    out = Path(args.out or REPO / f"benchmarks/results/pipeline_{args.mode}_{args.dtype}.json")
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
