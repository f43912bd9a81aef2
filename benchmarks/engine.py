"""Engine benchmark: a BPNet-sized model on the CPU (or CUDA with --device cuda).

Sequences per second and the time ratio to gradient x input for lrp, plrp-lambda, plrp-m, and tangermeme's
deep_lift_shap (20 shuffles) on the same inputs; peak resident memory of each method (each method runs in its
own process, so peaks don't mix). Prints a table and writes JSON.

    python benchmarks/engine.py [--batch 64 --length 1000 --filters 64 --layers 8 --repeats 3]
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

METHODS = ["gradient-x-input", "lrp", "plrp-lambda", "plrp-m", "deeplift-shap"]


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


def run_one(method, args):
    """Time one method in this process; print a JSON line."""
    from lrp.explain import Explainer

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = BPNet(args.filters, args.layers, args.length).eval()
    idx = torch.randint(0, 4, (args.batch, args.length))
    x = torch.nn.functional.one_hot(idx, 4).permute(0, 2, 1).float()
    target = {"output": 1, "index": 0}
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    explainer = Explainer(model, args.length, 4, method, target, device=args.device)
    explainer.n_shuffles = 20
    explainer.explain_batch(x[:8])  # warm-up (JIT, allocator)
    times = []
    for _ in range(args.repeats):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        explainer.explain_batch(x)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
    print(
        json.dumps(
            {
                "method": method,
                "seconds": sorted(times)[len(times) // 2],
                "times": times,
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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--out", default="benchmarks/results/engine.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args.one, args)
    rows = []
    for method in args.methods:
        cmd = [sys.executable, __file__, "--one", method] + [
            f"--{k}={getattr(args, k)}"
            for k in ("batch", "length", "filters", "layers", "repeats", "threads", "device")
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = next(r["seconds"] for r in rows if r["method"] == "gradient-x-input")
    dls = next((r["seconds"] for r in rows if r["method"] == "deeplift-shap"), None)
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    )
    print(
        f"BPNet {args.filters} filters, {args.layers} dilated residual layers, {args.length} bp, batch "
        f"{args.batch}, {args.threads} threads, device {args.device} ({device or platform.machine()})"
    )
    print(
        f"{'method':18s} {'s/batch':>8s} {'seq/s':>8s} {'x grad*in':>10s} {'DLS / this':>10s} "
        f"{'peak RSS MiB':>13s}"
    )
    for r in rows:
        r["seqs_per_s"] = args.batch / r["seconds"]
        r["ratio_to_gradient_x_input"] = r["seconds"] / base
        r["deeplift_shap_over_this"] = dls / r["seconds"] if dls else None
        print(
            f"{r['method']:18s} {r['seconds']:8.3f} {r['seqs_per_s']:8.1f} "
            f"{r['ratio_to_gradient_x_input']:10.2f} {r['deeplift_shap_over_this'] or 0:10.1f} "
            f"{r['peak_rss_mib']:13.0f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"config": vars(args), "device": device, "rows": rows}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
