"""Genome-scale benchmark: peak memory at 1x and 4x the genome with the same shard size; bp/s of attribution
against tangermeme's deep_lift_shap; bp/s of bigWig writing.

Part 1, memory. A random genome (4 chromosomes, a few N gaps) at 1x and at 4x size, the latter both as 4x longer
chromosomes and as 4x more chromosomes, is tiled (window 1000, step 500) into shards of the SAME size. Each step runs as the real CLI in its own process, so each peak is clean:
``plrp regions --tile``, ``plrp attribute`` of one shard (per shard: independent of the genome), ``plrp gather``
of all shards and ``plrp bigwig`` (these see the whole genome: their memory must not grow with it). Only one
shard per genome is explained by the model; the others get random relevance of the right shapes (real one-hot),
which gather and bigwig cannot tell apart. Peak RSS is the process's own ``VmHWM`` (exact); the
anonymous and file-backed parts (``RssAnon``/``RssFile`` of ``/proc/PID/status``, sampled every few ms) show
what a memory-mapped file adds: file-backed pages are page cache the kernel can drop, anonymous ones are not.

Part 2, attribution throughput. ``lrp.attribution.attribute.attribute_regions`` with lrp, plrp-lambda and deeplift-shap
(tangermeme's ``deep_lift_shap``, 20 shuffles) on the same N-free windows of the genome, each method in its own
process: a cold call (the whole step, model preparation included, as one shard job does), then the best of
two warm calls. Part 1 also writes every base with the bigWig libraries alone (pyBigWig with and without zoom
levels, pybigtools) to tell their memory from plrp's.

Part 3, tracks. ``lrp.genomics.tracks.write_bigwig`` alone, from the gathered ``relevance.npy`` (rows read with file
reads), in bp/s. The synthetic relevance is dense (no run of equal values to merge), the slowest case for the
run-length-encoded pybigtools writer; the zero fraction of the real plrp-lambda shard is printed beside it.

    python benchmarks/genome_scale.py [--mb 2 --scale 4 --shard-size 256 --windows 64 --device cpu]
"""

import argparse
import base64
import glob
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LENGTH, STEP = 1000, 500
MODEL_KWARGS = {"n_tasks": 5, "length": LENGTH, "filters": 32}
TARGET = {"index": 0}
METHODS = ["lrp", "plrp-lambda", "deeplift-shap"]
# Four chromosomes (fractions of the genome) and N gaps (fraction of the chromosome, length in bp); the gap
# lengths stay fixed when the genome grows, so both sizes have the same gap structure.
CHROMS = {"chr1": 0.35, "chr2": 0.30, "chr3": 0.225, "chr4": 0.125}
GAPS = {
    "chr1": [(0.0, 5000), (0.4, 20000), (0.7, 300)],
    "chr2": [(0.25, 50), (0.6, 12000)],
    "chr3": [(0.5, 3000)],
    "chr4": [(0.98, None)],  # N to the end of the chromosome
}


# ---------------------------------------------------------------------------------------------- setup
def make_genome(path, total_bp, copies=1, seed=0):
    """Random ACGT genome: ``copies`` sets of the 4 chromosomes of ``CHROMS`` (``total_bp`` per set), with
    the N gaps of ``GAPS``; returns ``{chrom: size}``."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGT", np.uint8)
    sizes = {}
    with open(path, "wb") as handle:
        for copy in range(copies):
            for base, frac in CHROMS.items():
                chrom = base if copy == 0 else f"{base}_{copy}"
                n = int(total_bp * frac)
                seq = alphabet[rng.integers(0, 4, n)]
                for where, width in GAPS[base]:
                    a = int(where * n)
                    seq[a : n if width is None else a + width] = ord("N")
                sizes[chrom] = n
                handle.write(f">{chrom}\n".encode())
                data = seq.tobytes()
                handle.write(b"\n".join(data[i : i + 60] for i in range(0, n, 60)) + b"\n")
    return sizes


def synthetic_shards(fasta, regions_path, shard_size, out_dir, skip, seed=0):
    """Write shard ``.npz`` files (attribute_main's keys) with random relevance, real one-hot; skip ``skip``."""
    from lrp.genomics.genome import fetch_one_hot, open_fasta
    from lrp.genomics.regions import read_regions, shard_bounds

    rng = np.random.default_rng(seed)
    regions = read_regions(regions_path)
    genome = open_fasta(fasta)
    names = np.array(["head", "block.conv2", "block.conv1", "conv"])
    for k, (lo, hi) in enumerate(shard_bounds(len(regions), shard_size)):
        if k == skip:
            continue
        x = fetch_one_hot(genome, regions.iloc[lo:hi], LENGTH)
        hyp = rng.standard_normal(x.shape, dtype=np.float32)
        with open(out_dir / f"shard{k:05d}.npz", "wb") as handle:
            np.savez(
                handle,
                relevance=hyp * x,
                hypothetical=hyp,
                target=rng.standard_normal(hi - lo).astype(np.float32),
                layer_gini=rng.random((hi - lo, len(names)), dtype=np.float32),
                layer_names=names,
                index=np.arange(lo, hi, dtype=np.int64),
                ohe=x.astype(np.int8),
            )


# ------------------------------------------------------------------------------------ measurement
def _status(pid):
    """``{VmRSS, RssAnon, RssFile, ...}`` in KiB from /proc/PID/status, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            text = handle.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(value.split()[0])
    return out


def vmhwm_mib():
    """Peak resident memory of this process's address space (``VmHWM``), MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(cmd, log_path, env=None, cwd=REPO):
    """Run ``cmd`` in its own process -> ``{seconds, peak_rss_mib, peak_anon_mib, peak_file_mib, ...}``.

    ``cmd`` is a ``--one`` mode of this script, which prints a JSON line with its own ``VmHWM`` at the end:
    that is ``peak_rss_mib`` (exact). ``ru_maxrss`` from ``os.wait4`` is kept as ``ru_maxrss_mib`` but is
    floored at this parent's RSS (Linux carries the pre-exec high-water mark of the forked child over exec).
    The anonymous and file-backed peaks are sampled from /proc every 5 ms (a very short spike may be missed).
    """
    peaks = {"RssAnon": 0, "RssFile": 0}
    with open(log_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=cwd
        )
        done = threading.Event()

        def sample():
            while not done.is_set():
                st = _status(proc.pid)
                if st:
                    for key, value in peaks.items():
                        peaks[key] = max(value, st.get(key, 0))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}); see {log_path}:\n"
            + Path(log_path).read_text()[-3000:]
        )
    report = json.loads(stdout.strip().splitlines()[-1])
    return {
        "seconds": seconds,
        "peak_rss_mib": report.pop("vmhwm_mib"),
        "ru_maxrss_mib": usage.ru_maxrss / 1024,
        "peak_anon_mib": peaks["RssAnon"] / 1024,
        "peak_file_mib": peaks["RssFile"] / 1024,
        **report,
    }


def _plrp(*args):
    """``plrp ARGS`` through ``lrp.steps.cli.main`` in a fresh process that reports its VmHWM."""
    return [sys.executable, str(Path(__file__).resolve()), "--one", "cli", *map(str, args)]


def _tile(d, *extra):
    """``plrp regions --tile`` of ``d/genome.fa`` into ``d/regions.bed``, measured (log in ``d``)."""
    args = ["--fasta", d / "genome.fa", "--length", LENGTH, "--tile", "--step", STEP]
    return measure(_plrp("regions", *args, "--out", d / "regions.bed", *extra), d / "regions.log")


def one_cli(argv):
    from lrp.steps.cli import main

    code = main(argv)
    if code:
        sys.exit(code)
    print(json.dumps({"vmhwm_mib": vmhwm_mib()}))


def genomes(scale):
    """(label, chromosome length factor, copies of the chromosome set): 1x, then `scale`x the genome as
    longer chromosomes (per-chromosome buffers grow until they reach their block caps) and as more
    chromosomes of the 1x sizes (only what scales with the whole genome grows)."""
    return [("1x", 1, 1), (f"{scale}x longer", scale, 1), (f"{scale}x more chroms", 1, scale)]


def memory_part(args, work):
    """Tile, attribute one shard, gather all shards and write the bigWig at 1x and `scale`x."""
    import torch

    from lrp.demo.model import build_model
    from lrp.genomics.regions import read_regions

    model_path = work / "model.pt"
    torch.save(build_model(**MODEL_KWARGS, seed=0).state_dict(), model_path)
    results = {}
    for label, longer, copies in genomes(args.scale):
        d = work / label.replace(" ", "_")
        shards = d / "shards"
        shards.mkdir(parents=True, exist_ok=True)
        fasta = d / "genome.fa"
        sizes = make_genome(fasta, int(args.mb * 1e6 * longer), copies, seed=args.seed)
        rows = {}
        rows["regions --tile"] = _tile(
            d,
            "--gaps-out",
            d / "gaps.bed",
            "--shard-size",
            args.shard_size,
            "--n-shards-out",
            d / "n_shards.txt",
        )
        regions = read_regions(d / "regions.bed")
        n_shards = int((d / "n_shards.txt").read_text())
        k = n_shards // 2  # a shard in the middle of the genome, explained for real
        rows["attribute (1 shard)"] = measure(
            _plrp(
                "attribute",
                "--fasta",
                fasta,
                "--regions",
                d / "regions.bed",
                "--shard",
                k,
                "--shard-size",
                args.shard_size,
                "--model",
                model_path,
                "--builder",
                "lrp.demo.model:build_model",
                "--builder-kwargs",
                json.dumps(MODEL_KWARGS),
                "--length",
                LENGTH,
                "--target",
                json.dumps(TARGET),
                "--method",
                "plrp-lambda",
                "--batch-size",
                args.batch,
                "--device",
                "cpu",
                "--threads",
                args.threads,
                "--out",
                shards / f"shard{k:05d}.npz",
            ),
            d / "attribute.log",
        )
        with np.load(shards / f"shard{k:05d}.npz") as real:
            projected = real["relevance"].sum(1)
            zero_fraction = float((projected == 0).mean())
        synthetic_shards(fasta, d / "regions.bed", args.shard_size, shards, skip=k, seed=args.seed)
        shard_files = sorted(glob.glob(str(shards / "shard*.npz")))
        assert len(shard_files) == n_shards, (len(shard_files), n_shards)
        rows["gather"] = measure(
            _plrp(
                "gather", "--shards", *shard_files, "--regions", d / "regions.bed", "--out-dir", d
            ),
            d / "gather.log",
        )
        rows["bigwig"] = measure(
            _plrp(
                "bigwig",
                "--relevance",
                d / "relevance.npz",
                "--regions",
                d / "regions.bed",
                "--fasta",
                fasta,
                "--out",
                d / "track.bw",
            ),
            d / "bigwig.log",
        )
        track = measure(
            [
                sys.executable,
                __file__,
                "--one",
                "write-bigwig",
                "--fasta",
                str(fasta),
                "--regions",
                str(d / "regions.bed"),
                "--relevance",
                str(d / "relevance.npy"),
                "--out",
                str(d / "track2.bw"),
            ],
            d / "write_bigwig.log",
        )
        libraries = {}
        for lib in LIBRARIES if not args.skip_libraries else ():
            res = measure(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    "library",
                    "--method",
                    lib.split()[-1],
                    "--fasta",
                    str(fasta),
                    "--out",
                    str(d / "library.bw"),
                ],
                d / "library.log",
            )
            libraries[lib] = res
        gaps = read_regions(d / "gaps.bed") if (d / "gaps.bed").stat().st_size else regions.iloc[:0]
        results[label] = {
            "genome_bp": sum(sizes.values()),
            "chroms": sizes,
            "n_gap_bp": int((gaps["end"] - gaps["start"]).sum()),
            "n_regions": len(regions),
            "n_shards": n_shards,
            "real_shard": k,
            "real_shard_zero_fraction": zero_fraction,
            "steps": rows,
            "write_bigwig": track,
            "libraries": libraries,
            "gathered_mib": sum(
                os.path.getsize(d / f"{a}.npy") for a in ("relevance", "hypothetical", "ohe")
            )
            / 2**20,
        }
        if not args.keep:
            for path in shard_files:
                os.remove(path)
            for name in ("relevance.npy", "hypothetical.npy", "ohe.npy", "relevance.npz"):
                (d / name).unlink(missing_ok=True)
    return results


def throughput_part(args, work):
    """bp/s of attribute_regions per method on the same N-free windows, each method in its own process."""
    from lrp.genomics.genome import fetch_one_hot, open_fasta
    from lrp.genomics.regions import read_regions

    d = work / "1x"
    regions = read_regions(d / "regions.bed")
    genome = open_fasta(d / "genome.fa")
    picked = []
    for lo in range(0, len(regions), 256):
        x = fetch_one_hot(genome, regions.iloc[lo : lo + 256], LENGTH)
        picked.append(x[x.sum(1).min(1) > 0])  # deeplift-shap needs strict one-hot (no N)
        if sum(len(p) for p in picked) >= args.windows:
            break
    x = np.concatenate(picked)[: args.windows]
    np.save(work / "windows.npy", x)
    rows = []
    for method in args.methods:
        res = measure(
            [
                sys.executable,
                __file__,
                "--one",
                "throughput",
                "--method",
                method,
                "--windows-file",
                str(work / "windows.npy"),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--batch",
                str(args.batch),
            ],
            work / f"throughput_{method}.log",
        )
        res["method"] = method
        rows.append(res)
    return len(x), rows


# ----------------------------------------------------------------------------------------- disk
STORE_FILES = ("relevance.npz", "relevance.npy", "hypothetical.npy", "ohe.npy")


def _shellcmds(run):
    """``{(rule, method): shell command}`` of a finished Snakemake run, from its ``.snakemake/metadata``."""
    out = {}
    for f in (Path(run) / ".snakemake/metadata").iterdir():
        if not f.is_file():
            continue
        try:
            meta = json.loads(f.read_text())
        except (ValueError, OSError):
            continue
        cmd = meta.get("shellcmd") or ""
        for rule in ("call_motifs", "gather", "attribute"):
            if cmd.startswith(f"plrp {rule.replace('_', '-')} "):
                method = Path(base64.urlsafe_b64decode(f.name).decode()).parts
                out[(rule, method[method.index("results") + 3] if "results" in method else "")] = (
                    cmd
                )
    return out


def _flag(cmd, name):
    m = re.search(rf"{name} ('[^']*'|\S+)", cmd)
    return shlex.split(m.group(1))[0] if m else None


def _sizes(folder, names):
    return {n: (folder / n).stat().st_size for n in names if (folder / n).is_file()}


def _tree_bytes(path):
    path = Path(path)
    return (
        path.stat().st_size
        if path.is_file()
        else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    )


def _compare_stores(ref_path, other_path, key, chunk_bytes=32 << 20):
    """max / mean absolute difference, peak |ref| and Pearson r of ``key`` of two stores (by blocks)."""
    from lrp.genomics.store import open_store

    a, b = open_store(ref_path, (key,)), open_store(other_path, (key,))
    n, mx, peak, s = 0, 0.0, 0.0, np.zeros(5)  # sums: x, y, xx, yy, xy (float64)
    total_abs = 0.0
    for lo, hi in a.chunks(chunk_bytes):
        x = np.asarray(a.arrays[key].read(lo, hi), np.float64).ravel()
        y = np.asarray(b.arrays[key].read(lo, hi), np.float64).ravel()
        d = np.abs(x - y)
        mx, total_abs, n = max(mx, float(d.max(initial=0))), total_abs + float(d.sum()), n + x.size
        peak = max(peak, float(np.abs(x).max(initial=0)))
        s += [x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()]
    cov = s[4] / n - s[0] * s[1] / n**2
    r = cov / np.sqrt((s[2] / n - (s[0] / n) ** 2) * (s[3] / n - (s[1] / n) ** 2))
    return {"max_abs": mx, "mean_abs": total_abs / n, "peak_abs": peak, "pearson_r": float(r)}


def _compare_calls(ref_tsv, other_tsv):
    import pandas as pd

    key = ["chrom", "start", "end", "strand", "name"]
    a, b = (pd.read_csv(p, sep="\t", keep_default_na=False) for p in (ref_tsv, other_tsv))
    sa, sb = (set(map(tuple, t[key].astype(str).to_numpy())) for t in (a, b))
    return {
        "calls_float32": len(a),
        "calls_float16": len(b),
        "identical": len(sa & sb),
        "only_float32": len(sa - sb),
        "only_float16": len(sb - sa),
        "jaccard": len(sa & sb) / max(len(sa | sb), 1),
    }


def _group_tracks(parts):
    """``parts`` with the four ``hypothetical_{A,C,G,T}.bw`` summed as one (they come and go together)."""
    out = {k: v for k, v in parts.items() if not k.startswith("hypothetical_")}
    hyp = sum(v for k, v in parts.items() if k.startswith("hypothetical_"))
    return {**out, "hypothetical_{A,C,G,T}.bw": hyp} if hyp else out


def disk_part(args, work):
    """Disk bytes per explained Mb per method, windows and genome mode, float32 and float16, from a finished
    windows-mode Snakemake run (``--disk-from``, e.g. ``benchmarks/pipeline.py --workdir DIR``): its shards
    are gathered again by the CLI as genome mode does (``plrp gather --selection --arrays hypothetical ohe``,
    ``plrp bigwig --shards [--hypothetical-prefix]``) and float16 is compared with float32 (the relevance and
    hypothetical scores, and the motif calls of ``plrp call-motifs`` with the run's own options)."""
    from lrp.genomics.regions import read_regions
    from lrp.genomics.store import select_rows, write_selection
    from lrp.genomics.tracks import centre_crop

    run = Path(args.disk_from).resolve()
    pair = next(p for p in sorted((run / "results").glob("*/*")) if (p / "regions.bed").is_file())
    regions_path = pair / "regions.bed"
    regions = read_regions(regions_path, coords_only=True)
    ks, ke = centre_crop(regions)
    explained_mb = float((ke - ks).sum()) / 1e6
    cmds = _shellcmds(run)
    methods = sorted(p.name for p in pair.iterdir() if (p / "shards").is_dir())
    if args.disk_methods:
        methods = [m for m in methods if m in args.disk_methods]
    calls_cmd = cmds[("call_motifs", methods[0])]
    fasta = run / _flag(calls_cmd, "--fasta")
    select = {"top_fraction": args.top_fraction}
    rows = {}
    for method in methods:
        src = pair / method
        shards = sorted(str(p) for p in (src / "shards").glob("*.npz"))
        d = work / "disk" / method
        d.mkdir(parents=True, exist_ok=True)
        with np.load(src / "relevance.npz") as z:
            target = z["target"]
        # what `plrp select-windows --top-fraction` keeps: its model pass gives the target the shards hold
        kept = select_rows(target, **select)
        selection = d / "selection.npz"
        write_selection(selection, kept)
        row = {"n_windows": len(regions), "n_selected": len(kept)}
        windows = {
            "shards": _tree_bytes(src / "shards"),
            **_sizes(src, STORE_FILES),
            "relevance.bw": _tree_bytes(src / "relevance.bw"),
        }
        other = _tree_bytes(src) - sum(windows.values())
        row["other_outputs"] = other  # calls, motifs, logos, params (as in the windows run)
        row["windows float32"] = windows
        for dtype in ("float16",):
            out = d / f"windows_{dtype}"
            plrp = [*_plrp("gather", "--shards", *shards, "--regions", regions_path)]
            measure([*plrp, "--dtype", dtype, "--out-dir", out], d / "gather.log")
            row[f"windows {dtype}"] = {
                "shards": windows["shards"],
                **_sizes(out, STORE_FILES),
                "relevance.bw": windows["relevance.bw"],
            }
        for dtype in ("float32", "float16"):
            out = d / f"genome_{dtype}"
            measure(
                _plrp(
                    "gather",
                    "--shards",
                    *shards,
                    "--regions",
                    regions_path,
                    "--selection",
                    selection,
                    "--dtype",
                    dtype,
                    "--arrays",
                    "hypothetical",
                    "ohe",
                    "--out-dir",
                    out,
                ),
                d / "gather.log",
            )
            row[f"genome {dtype}"] = _sizes(out, STORE_FILES)
        tracks = d / "tracks"
        measure(
            _plrp(
                "bigwig",
                "--shards",
                *shards,
                "--regions",
                regions_path,
                "--fasta",
                fasta,
                "--out",
                tracks / "relevance.bw",
                "--hypothetical-prefix",
                tracks / "hypothetical_",
            ),
            d / "bigwig.log",
        )
        hyp = {f"hypothetical_{b}.bw": _tree_bytes(tracks / f"hypothetical_{b}.bw") for b in "ACGT"}
        for dtype in ("float32", "float16"):
            g = row[f"genome {dtype}"]
            g["relevance.bw"] = _tree_bytes(tracks / "relevance.bw")
            row[f"genome {dtype} + hypothetical_track"] = {**g, **hyp}
        for label in [k for k in row if k.startswith(("windows", "genome"))]:
            parts = row[label]
            total = sum(parts.values())
            row[label] = {
                "parts": parts,
                "bytes": total,
                "mb_per_mb": total / 1e6 / explained_mb,
                "mb_per_mb_with_other": (total + other) / 1e6 / explained_mb,
                "largest": max(grouped := _group_tracks(parts), key=grouped.get),
            }
        row["float16 vs float32"] = {
            key: _compare_stores(src / "relevance.npz", d / "windows_float16/relevance.npz", key)
            for key in ("relevance", "hypothetical")
        }
        if method in (args.calls_methods or methods):
            c = cmds[("call_motifs", method)]
            out = d / "calls_float16"
            out.mkdir(exist_ok=True)
            argv = shlex.split(c)[1:]
            swap = {
                "--relevance": str(d / "windows_float16/relevance.npz"),
                "--out-bed": str(out / "calls.bed"),
                "--out-tsv": str(out / "calls.tsv"),
                "--out-bigbed": str(out / "calls.bb"),
            }
            argv = [swap.get(argv[i - 1], a) if i else a for i, a in enumerate(argv)]
            argv = argv[: argv.index("--log")] if "--log" in argv else argv
            measure(_plrp(*argv), d / "calls.log", cwd=run)
            row["float16 vs float32"]["calls"] = _compare_calls(
                src / "calls.tsv", out / "calls.tsv"
            )
        rows[method] = row
        if not args.keep:
            for sub in ("windows_float16", "genome_float32", "genome_float16", "tracks"):
                shutil.rmtree(d / sub, ignore_errors=True)
    return {
        "run": str(run),
        "pair": str(pair.relative_to(run)),
        "explained_mb": explained_mb,
        "select": select,
        "methods": rows,
    }


def disk_report(disk):
    lines = [
        (
            f"Disk per method and explained Mb ({disk['explained_mb']:.3f} Mb explained, {disk['pair']} of "
            f"{disk['run']}; genome mode keeps the top {disk['select']['top_fraction']:.0%} windows' arrays). "
            "MB/Mb of the relevance files (shards, store, tracks); '+other' adds the calls, motifs and logos."
        )
    ]
    labels = [
        k for k in next(iter(disk["methods"].values())) if k.startswith(("windows", "genome"))
    ]
    lines.append(f"{'method':20s} " + " ".join(f"{lab[:26]:>27s}" for lab in labels))
    for method, row in disk["methods"].items():
        lines.append(
            f"{method:20s} "
            + " ".join(
                f"{row[lab]['mb_per_mb']:8.2f} (+other {row[lab]['mb_per_mb_with_other']:7.2f})"
                for lab in labels
            )
        )
    lines.append(
        "Largest part per configuration (first method): "
        + "; ".join(
            f"{lab}: {row[lab]['largest']} {_group_tracks(row[lab]['parts'])[row[lab]['largest']] / 1e6:.2f} MB"
            for lab in labels
            for row in [next(iter(disk["methods"].values()))]
        )
    )
    lines.append("float16 against float32 (all windows):")
    lines.append(
        f"{'method':20s} {'array':13s} {'max |d|':>10s} {'mean |d|':>10s} {'max |x|':>10s} {'r':>12s}"
        f" {'calls 32/16':>12s} {'same':>6s} {'jaccard':>8s}"
    )
    for method, row in disk["methods"].items():
        cmp_ = row["float16 vs float32"]
        c = cmp_.get("calls")
        for key in ("relevance", "hypothetical"):
            e = cmp_[key]
            extra = (
                f" {c['calls_float32']:>5d}/{c['calls_float16']:<6d} {c['identical']:6d} {c['jaccard']:8.4f}"
                if c and key == "relevance"
                else ""
            )
            lines.append(
                f"{method:20s} {key:13s} {e['max_abs']:10.3g} {e['mean_abs']:10.3g} "
                f"{e['peak_abs']:10.3g} {e['pearson_r']:12.9f}{extra}"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------------- child modes
def one_throughput(args):
    import torch

    from lrp.attribution.attribute import attribute_regions
    from lrp.demo.model import build_model
    from lrp.engine.allocator import keep_freed_memory

    keep_freed_memory()  # as `plrp attribute` does
    torch.set_num_threads(args.threads)
    model = build_model(**MODEL_KWARGS, seed=0).eval()
    x = np.load(args.windows_file)
    params = {"n_shuffles": 20} if args.method == "deeplift-shap" else {}
    cuda = args.device.startswith("cuda")
    times = []
    for _ in range(3):  # cold (the whole step, model preparation included), then warm (best of 2)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = attribute_regions(
            model,
            x,
            args.method,
            TARGET,
            dict(params),
            LENGTH,
            batch_size=args.batch,
            device=args.device,
            seed=0,
            progress=False,
        )
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    assert out["relevance"].shape == x.shape and np.isfinite(out["relevance"]).all()
    print(
        json.dumps(
            {
                "cold_s": times[0],
                "warm_s": min(times[1:]),
                "times": times,
                "n_windows": len(x),
                "bp": int(x.shape[0] * x.shape[2]),
                "device_name": torch.cuda.get_device_name()
                if cuda
                else (platform.processor() or platform.machine()),
                "torch_threads": torch.get_num_threads(),
                "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
                "vmhwm_mib": vmhwm_mib(),
            }
        )
    )


def one_write_bigwig(args):
    from lrp.genomics.genome import chrom_sizes
    from lrp.genomics.regions import read_regions
    from lrp.genomics.store import open_relevance
    from lrp.genomics.tracks import centre_crop, write_bigwig

    sizes = chrom_sizes(args.fasta)
    regions = read_regions(args.regions, coords_only=True)
    values = open_relevance(args.relevance)  # rows read with file reads, as `plrp bigwig` does
    ks, ke = centre_crop(regions)
    t0 = time.perf_counter()
    write_bigwig(args.out, sizes, regions, values)
    seconds = time.perf_counter() - t0
    bases = int((ke - ks).sum())
    print(
        json.dumps(
            {
                "write_s": seconds,
                "bases_written": bases,
                "bp_per_s": bases / seconds,
                "vmhwm_mib": vmhwm_mib(),
            }
        )
    )


def one_library(args):
    """Write random values on every base of the genome with a bigWig library alone (1 Mb per call)."""
    from lrp.genomics.genome import chrom_sizes

    sizes = chrom_sizes(args.fasta)
    chunk = np.random.default_rng(0).random(1 << 20)
    t0 = time.perf_counter()
    if args.method == "pybigtools":
        import pybigtools

        def entries():
            for chrom, n in sizes.items():
                for lo in range(0, n, 1 << 20):
                    for i, v in enumerate(chunk[: min(1 << 20, n - lo)].tolist()):
                        yield chrom, lo + i, lo + i + 1, v

        pybigtools.open(args.out, "w").write(sizes, entries())
    else:
        import pyBigWig

        bw = pyBigWig.open(args.out, "w")
        bw.addHeader(list(sizes.items()), maxZooms=int(args.method.split("=")[1]))
        for chrom, n in sizes.items():
            for lo in range(0, n, 1 << 20):
                bw.addEntries(chrom, lo, values=chunk[: min(1 << 20, n - lo)], span=1, step=1)
        bw.close()
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "write_s": seconds,
                "bp_per_s": sum(sizes.values()) / seconds,
                "vmhwm_mib": vmhwm_mib(),
            }
        )
    )


LIBRARIES = ["pyBigWig maxZooms=10", "pyBigWig maxZooms=0", "pybigtools"]


# --------------------------------------------------------------------------------------- report
def _mib(x):
    return f"{x:8.0f}"


def report(args, memory, n_windows, throughput):
    lines = []
    labels = list(memory)
    one = memory["1x"]
    lines.append(
        f"Genome-scale memory: random genomes with N gaps, window {LENGTH}, step {STEP}, shard size "
        f"{args.shard_size} regions for all; each step is the CLI in its own process"
    )
    for label in labels:
        m = memory[label]
        lines.append(
            f"  {label:16s} {m['genome_bp'] / 1e6:5.1f} Mb, {len(m['chroms']):2d} chromosomes "
            f"(largest {max(m['chroms'].values()) / 1e6:.2f} Mb), {m['n_gap_bp']} bp in N gaps, "
            f"{m['n_regions']} regions, {m['n_shards']} shards, gathered .npy {m['gathered_mib']:.0f} MiB"
        )
    lines.append(
        "  One shard per genome is explained by the model (plrp-lambda, `plrp attribute`); the other "
        "shards hold random relevance of the right shapes (real one-hot)."
    )
    lines.append(
        "  Peak memory in MiB: RSS = VmHWM of the process (exact); anon / file = RssAnon / RssFile sampled every 5 "
        "ms (file = pages of memory-mapped files, which the kernel can reclaim)"
    )
    lines.append(
        f"{'step':20s} {'genome':16s} {'RSS':>7s} {'ratio':>6s} {'anon':>7s} {'ratio':>6s} "
        f"{'file':>7s} {'ratio':>6s} {'seconds':>8s}"
    )
    ratios = {}
    for step in one["steps"]:
        base = one["steps"][step]
        for label in labels:
            row = memory[label]["steps"][step]
            r = {
                "rss": row["peak_rss_mib"] / base["peak_rss_mib"],
                "anon": row["peak_anon_mib"] / max(base["peak_anon_mib"], 1e-9),
                "file": row["peak_file_mib"] / max(base["peak_file_mib"], 1e-9),
            }
            if label != "1x":
                r["anon_delta_mib"] = row["peak_anon_mib"] - base["peak_anon_mib"]
                ratios.setdefault(step, {})[label] = r
            flag = "  > 1.2" if r["rss"] > 1.2 else ""
            lines.append(
                f"{step:20s} {label:16s} {row['peak_rss_mib']:7.0f} {r['rss']:6.2f} "
                f"{row['peak_anon_mib']:7.0f} {r['anon']:6.2f} {row['peak_file_mib']:7.0f} "
                f"{r['file']:6.2f} {row['seconds']:8.1f}{flag}"
            )
    lines.append("")
    zero = one.get("real_shard_zero_fraction")
    lines.append(
        "Track writing (lrp.genomics.tracks.write_bigwig alone, from relevance.npy; dense random relevance"
        + (f"; the real plrp-lambda shard is {zero:.0%} zeros" if zero is not None else "")
        + "):"
    )
    lines.append(
        f"{'genome':16s} {'bases':>11s} {'seconds':>8s} {'bp/s':>12s} {'peak RSS':>9s} {'anon':>7s}"
    )
    for label in labels:
        t = memory[label]["write_bigwig"]
        lines.append(
            f"{label:16s} {t['bases_written']:11d} {t['write_s']:8.2f} {t['bp_per_s']:12.0f} "
            f"{t['peak_rss_mib']:9.0f} {t['peak_anon_mib']:7.0f}"
        )
    if any(memory[label].get("libraries") for label in labels):
        lines.append("")
        lines.append(
            "bigWig libraries alone (random values on every base, all chromosomes; peak MiB):"
        )
        lines.append(
            f"{'library':22s} {'genome':16s} {'RSS':>7s} {'ratio':>6s} {'anon':>7s} {'ratio':>6s} "
            f"{'bp/s':>10s}"
        )
        for lib in LIBRARIES:
            base = one["libraries"][lib]
            for label in labels:
                r = memory[label]["libraries"][lib]
                lines.append(
                    f"{lib:22s} {label:16s} {r['peak_rss_mib']:7.0f} "
                    f"{r['peak_rss_mib'] / base['peak_rss_mib']:6.2f} {r['peak_anon_mib']:7.0f} "
                    f"{r['peak_anon_mib'] / base['peak_anon_mib']:6.2f} {r['bp_per_s']:10.0f}"
                )
    lines.append("")
    rows = throughput
    dev = rows[0]["device_name"]
    lines.append(
        f"Attribution throughput (attribute_regions, demo CNN {MODEL_KWARGS}, {n_windows} N-free "
        f"windows of {LENGTH} bp, batch {args.batch}, device {args.device} ({dev}), "
        f"{args.threads} threads; deeplift-shap = tangermeme deep_lift_shap, 20 shuffles; cold = "
        "first call in a fresh process incl. model preparation, warm = best of the next two calls)"
    )
    lines.append(
        f"{'method':15s} {'cold s':>8s} {'cold bp/s':>10s} {'warm s':>8s} {'warm bp/s':>10s} "
        f"{'x DLS cold':>10s} {'x DLS warm':>10s} {'peak RSS':>9s}"
    )
    dls = next((r for r in rows if r["method"] == "deeplift-shap"), None)
    for r in rows:
        r["cold_bp_per_s"] = r["bp"] / r["cold_s"]
        r["warm_bp_per_s"] = r["bp"] / r["warm_s"]
        r["speedup_over_dls_cold"] = dls["cold_s"] / r["cold_s"] if dls else None
        r["speedup_over_dls_warm"] = dls["warm_s"] / r["warm_s"] if dls else None
        lines.append(
            f"{r['method']:15s} {r['cold_s']:8.2f} {r['cold_bp_per_s']:10.0f} {r['warm_s']:8.2f} "
            f"{r['warm_bp_per_s']:10.0f} {r['speedup_over_dls_cold'] or 0:10.2f} "
            f"{r['speedup_over_dls_warm'] or 0:10.2f} {r['peak_rss_mib']:9.0f}"
        )
    return "\n".join(lines), ratios


def main():
    if sys.argv[1:3] == ["--one", "cli"]:
        return one_cli(sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0, help="1x genome size in Mb")
    parser.add_argument(
        "--scale", type=int, default=4, help="the larger genome is this many times 1x"
    )
    parser.add_argument(
        "--shard-size", type=int, default=256, help="regions per shard (both sizes)"
    )
    parser.add_argument("--windows", type=int, default=64, help="windows for the throughput part")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (attribution throughput part)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-libraries",
        action="store_true",
        help="skip the bigWig libraries alone (pyBigWig with/without zooms, pybigtools)",
    )
    parser.add_argument(
        "--skip-memory", action="store_true", help="throughput only (e.g. on a GPU node)"
    )
    parser.add_argument(
        "--workdir", help="keep the files here (default: a temporary folder, removed)"
    )
    parser.add_argument("--keep", action="store_true", help="keep shards and gathered arrays")
    parser.add_argument(
        "--disk-from",
        help="disk part only: a finished windows-mode Snakemake run (benchmarks/pipeline.py --workdir DIR)",
    )
    parser.add_argument("--disk-methods", nargs="+", help="methods of --disk-from (default all)")
    parser.add_argument(
        "--calls-methods",
        nargs="+",
        help="methods whose float16 motif calls are compared (default all)",
    )
    parser.add_argument(
        "--top-fraction",
        type=float,
        default=0.05,
        help="genome mode's selection (the default of output.select)",
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/genome_scale.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--windows-file", help=argparse.SUPPRESS)
    parser.add_argument("--fasta", help=argparse.SUPPRESS)
    parser.add_argument("--regions", help=argparse.SUPPRESS)
    parser.add_argument("--relevance", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.one == "throughput":
        return one_throughput(args)
    if args.one == "library":
        return one_library(args)
    if args.one == "write-bigwig":
        return one_write_bigwig(args)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: CUDA is not available")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="plrp_genome_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.disk_from:
        try:
            disk = disk_part(args, work)
        finally:
            if not args.workdir:
                shutil.rmtree(work, ignore_errors=True)
        text = disk_report(disk)
        print(text)
        print(f"total {time.perf_counter() - t0:.0f} s")
        out = Path(args.out).with_name(Path(args.out).stem + "_disk.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"disk": disk, "table": text}, indent=2, default=str))
        print(f"wrote {out}")
        return
    try:
        if args.skip_memory:
            d = work / "1x"
            d.mkdir(parents=True, exist_ok=True)
            make_genome(d / "genome.fa", int(args.mb * 1e6), seed=args.seed)
            _tile(d)
            memory = None
        else:
            memory = memory_part(args, work)
        n_windows, throughput = throughput_part(args, work)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if memory is None:
        text, ratios = "", None
        dls = next((r for r in throughput if r["method"] == "deeplift-shap"), None)
        for r in throughput:
            r["cold_bp_per_s"], r["warm_bp_per_s"] = r["bp"] / r["cold_s"], r["bp"] / r["warm_s"]
            r["speedup_over_dls_warm"] = dls["warm_s"] / r["warm_s"] if dls else None
            text += (
                f"{r['method']:15s} cold {r['cold_bp_per_s']:8.0f} bp/s  warm {r['warm_bp_per_s']:8.0f} "
                f"bp/s  x DLS warm {r['speedup_over_dls_warm'] or 0:.2f}  ({r['device_name']})\n"
            )
    else:
        text, ratios = report(args, memory, n_windows, throughput)
    print(text)
    print(f"total {time.perf_counter() - t0:.0f} s")
    config = {
        k: v
        for k, v in vars(args).items()
        if k not in ("one", "method", "windows_file", "fasta", "regions", "relevance")
    }
    result = {
        "config": config,
        "window": LENGTH,
        "step": STEP,
        "model": {"builder": "lrp.demo.model:build_model", **MODEL_KWARGS},
        "host": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "note": "memory: one shard per genome explained by the model (plrp-lambda, CLI); the other shards hold "
        "random relevance of the right shapes with the real one-hot. "
        "anon/file = RssAnon/RssFile sampled every 5 ms. peak_rss_mib = VmHWM reported by the process "
        "itself; ru_maxrss_mib (os.wait4) is floored at the parent's RSS and kept for reference only.",
        "memory": memory,
        "memory_ratios": ratios,
        "throughput": {"n_windows": n_windows, "rows": throughput},
        "table": text,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
