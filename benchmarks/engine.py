"""Engine benchmark: a BPNet-sized model on the CPU (or CUDA with --device cuda).

Sequences per second and the time ratio to gradient x input for lrp, plrp-lambda, plrp-m, and tangermeme's
deep_lift_shap (20 shuffles) on the same inputs; peak resident memory of each method. Prints a table and writes
JSON.

Timing runs every method in one process, in rounds (each round times each method once, in turn), and reports
each method's median over the rounds, so the machine's load drifts over all methods alike and the ratios are
robust on a shared machine. Peak memory is measured apart, one process per method, so peaks don't mix. The
process keeps freed memory for reuse as `plrp attribute` does (lrp.engine.allocator); --default-malloc leaves glibc's
settings, and the minor page faults per batch show the difference.

    python benchmarks/engine.py [--batch 64 --length 1000 --filters 64 --layers 8 --repeats 5]
    python benchmarks/engine.py --target profile    # explain the profile head (the counts head by default)
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

# module-autograd: gradient x input by autograd through the user's whole nn.Module (every head, torch's
# convolutions), as tools that wrap a model's forward compute it; a reference, not a plrp method
METHODS = ["gradient-x-input", "module-autograd", "lrp", "plrp-lambda", "plrp-m", "deeplift-shap"]


class BPNet(nn.Module):
    """BPNet: a wide first conv, dilated residual convs, a profile head and a counts head."""

    def __init__(self, filters=64, n_layers=8, length=1000):
        super().__init__()
        self.iconv = nn.Conv1d(4, filters, 21, padding=10)
        self.irelu = nn.ReLU()
        self.rconvs = nn.ModuleList(
            nn.Conv1d(filters, filters, 3, padding=2**i, dilation=2**i)
            for i in range(1, n_layers + 1)
        )
        self.rrelus = nn.ModuleList(nn.ReLU() for _ in range(n_layers))
        self.fconv = nn.Conv1d(filters, 1, 75, padding=37)
        self.linear = nn.Linear(filters, 1)

    def forward(self, x):
        x = self.irelu(self.iconv(x))
        for conv, relu in zip(self.rconvs, self.rrelus):
            x = x + relu(conv(x))
        profile = self.fconv(x).squeeze(1)
        counts = self.linear(x.mean(-1))
        return profile, counts


TARGETS = {
    "counts": {"output": 1, "index": 0},
    "profile": {"output": 0, "reduction": "profile"},
}


class ModuleAutograd:
    """Gradient x input by autograd through the whole module (the reference row)."""

    def __init__(self, model, target, device):
        from lrp.engine.target import normalize_target

        self.model, self.target, self.device = model.to(device), normalize_target(target), device

    def explain_batch(self, x):
        from lrp.engine.target import target_scalar

        leaf = x.to(self.device).requires_grad_()
        f = target_scalar(self.model(leaf)[self.target["output"]], self.target)
        (g,) = torch.autograd.grad(f.sum(), leaf)
        return (leaf * g).detach().cpu()


def _setup(args, methods):
    from lrp.engine.allocator import keep_freed_memory
    from lrp.engine.explain import Explainer

    if not args.default_malloc:
        keep_freed_memory()  # as `plrp attribute` does, for every method alike
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = BPNet(args.filters, args.layers, args.length).eval()
    idx = torch.randint(0, 4, (args.batch, args.length))
    x = torch.nn.functional.one_hot(idx, 4).permute(0, 2, 1).float()
    explainers = {}
    for method in methods:
        if method == "module-autograd":
            explainers[method] = ModuleAutograd(model, TARGETS[args.target], args.device)
        else:
            explainers[method] = Explainer(
                model, args.length, 4, method, TARGETS[args.target], device=args.device
            )
            explainers[method].n_shuffles = 20
        explainers[method].explain_batch(x[:8])  # warm-up (JIT, allocator)
    return explainers, x


def _timed(explainer, x, device):
    """Seconds and minor page faults of one batch."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    explainer.explain_batch(x)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def time_all(args):
    """Time every method in this process, round by round; print a JSON line of the times and faults."""
    explainers, x = _setup(args, args.methods)
    runs = {m: [] for m in args.methods}
    for _ in range(args.repeats):
        for method, explainer in explainers.items():
            runs[method].append(_timed(explainer, x, args.device))
    print(json.dumps(runs))


def peak_one(method, args):
    """One batch of one method in this process; print a JSON line of its peak memory."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    explainers, x = _setup(args, [method])
    _timed(explainers[method], x, args.device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
    print(
        json.dumps(
            {
                "method": method,
                "peak_rss_mib": peak / 1024,
                "rss_before_mib": rss0 / 1024,
                "gpu_peak_mib": gpu_peak,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--target", choices=sorted(TARGETS), default="counts")
    parser.add_argument(
        "--default-malloc", action="store_true", help="leave glibc's malloc settings as they are"
    )
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--out", default="benchmarks/results/engine.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--time-all", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return peak_one(args.one, args)
    if args.time_all:
        return time_all(args)

    passed = ("batch", "length", "filters", "layers", "repeats", "threads", "device", "target")
    options = [f"--{k}={getattr(args, k)}" for k in passed]
    options += ["--default-malloc"] if args.default_malloc else []

    def child(*extra):
        cmd = [sys.executable, __file__, *extra, *options]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    runs = child("--time-all", "--methods", *args.methods)
    rows = []
    for method in args.methods:
        row = child("--one", method)
        row["times"] = [t for t, _ in runs[method]]
        row["seconds"] = sorted(row["times"])[len(row["times"]) // 2]
        faults = sorted(f for _, f in runs[method])
        row["page_faults_per_batch"] = faults[len(faults) // 2]
        rows.append(row)
    base = [t for t, _ in runs["gradient-x-input"]]
    dls = next((r["seconds"] for r in rows if r["method"] == "deeplift-shap"), None)
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    )
    print(
        f"BPNet {args.filters} filters, {args.layers} dilated residual layers, {args.length} bp, batch "
        f"{args.batch}, {args.target} target, {args.threads} threads, device {args.device} "
        f"({device or platform.machine()}); median of {args.repeats} interleaved rounds"
    )
    print(
        f"{'method':18s} {'s/batch':>8s} {'seq/s':>8s} {'x grad*in':>10s} {'DLS / this':>10s} "
        f"{'peak RSS MiB':>13s} {'faults/batch':>12s}"
    )
    for r in rows:
        r["seqs_per_s"] = args.batch / r["seconds"]
        # the median of the per-round ratios: each round's methods ran under the same load
        ratios = sorted(t / b for t, b in zip(r["times"], base))
        r["ratio_to_gradient_x_input"] = ratios[len(ratios) // 2]
        r["deeplift_shap_over_this"] = dls / r["seconds"] if dls else None
        print(
            f"{r['method']:18s} {r['seconds']:8.3f} {r['seqs_per_s']:8.1f} "
            f"{r['ratio_to_gradient_x_input']:10.2f} {r['deeplift_shap_over_this'] or 0:10.1f} "
            f"{r['peak_rss_mib']:13.0f} {r['page_faults_per_batch']:12d}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"config": vars(args), "device": device, "rows": rows}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
