"""The measurements behind the diagnosis in ``docs/plrp-method.md`` (issue 12, item 1; not a timed test).

Uses the setups of :mod:`quality` (same seeds, same training): ``maxcnn`` (the classifier CNN, global max
pool; the figures in ``docs/`` were made on the 1 kb classifier that was the demo's model before the BPNet-style
one) and ``bpnet`` (bpnet-lite's BPNet, profile and counts heads, trained as when the diagnosis was measured:
``counts_at_mean=False``). Per setup and head it measures:

1. **The signed target.** The initial relevance at the outputs split into its positive and negative
   parts; LRP is linear in its initial relevance (the rules' ratios depend on the activations only), so
   each part is propagated on its own (``initial_relevance`` of :mod:`lrp.engine.explain` replaced by the
   clipped one) and the two add up to the full explanation (checked). Per composite (``conv-zplus``: z-plus on
   hidden convolutions, the default for a single logit; ``conv-epsilon``): where each part's relevance lands at the input (on or off the
   planted sites), RMA and AUPRC.
2. **LRP against gradient x input.** The Pearson correlation of LRP (``conv-zplus``, ``conv-epsilon``, epsilon
   everywhere) with gradient x input; the share of ``f_t`` that passes through the z-plus layers; on the
   classifier CNN, per channel of the global max pool, the head's input relevance ``w_c a_c`` against the same
   for dinucleotide-shuffled copies of the windows (what a reference-based method subtracts).
3. **Where the off-site relevance sits.** Per linear layer's input (top-down) and per channel, the
   positive and negative relevance mass on and off the planted sites (positions of a layer of ``L / k``
   positions count as on a site when any of their ``k`` input positions is; a layer shorter by an even
   margin, a trimmed output, is centre-aligned).

Run: ``.venv/bin/python benchmarks/diagnose.py [--setups maxcnn bpnet]``; writes
``docs/figures/diagnosis_*.png`` and ``benchmarks/results/diagnosis.json`` and prints the numbers.
"""

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality as Q

from lrp.core.atomic import atomic_open, atomic_path
from lrp.engine import explain as E
from lrp.evaluation import metrics as M

ROOT = Path(__file__).resolve().parents[1]
#: explicit: the default composite depends on the target (lrp.engine.rules.composite); the diagnosis is of
#: relevance against a zero input (LRP's own root, where the gradient x input identity holds)
COMPOSITES = {
    "conv-zplus": {"first": "epsilon", "conv": "zplus", "linear": "epsilon", "root": "zero"},
    "conv-epsilon": {"conv": "epsilon", "root": "zero"},
    "all-epsilon": {"first": "epsilon", "conv": "epsilon", "linear": "epsilon", "root": "zero"},
}


# ------------------------------------------------------------------------------------------ helpers
def layer_mask(mask, length):
    """The ``(N, L)`` site mask at a representation of ``length`` positions -> ``(N, length)`` bool, or
    ``None`` when the positions cannot be aligned. ``L = k * length``: a position is on a site when any
    of its ``k`` input positions is; ``length < L`` by an even margin: centre-cropped (trimmed outputs)."""
    n, L = mask.shape
    if length == L:
        return mask
    if L % length == 0:
        return mask.reshape(n, length, L // length).any(2)
    if (L - length) % 2 == 0 and length < L:
        m = (L - length) // 2
        return mask[:, m : L - m]
    return None


def on_off(r, mask):
    """``r (N, C, L')`` relevance -> per channel ``(C,)`` float64 arrays ``pos_on``, ``pos_off``,
    ``neg_on``, ``neg_off`` (masses, ``neg`` as ``|R|``) and the layer's site coverage; ``None`` when
    ``r`` has no position axis that aligns with the mask."""
    if r.dim() != 3:
        return None
    m = layer_mask(mask, r.shape[2])
    if m is None:
        return None
    r = r.double().numpy()
    pos, neg = r.clip(0, None), (-r).clip(0, None)
    on = m[:, None, :]
    return {
        "pos_on": (pos * on).sum((0, 2)),
        "pos_off": (pos * ~on).sum((0, 2)),
        "neg_on": (neg * on).sum((0, 2)),
        "neg_off": (neg * ~on).sum((0, 2)),
        "coverage": float(m.mean()),
    }


def share(a, b):
    """``a / (a + b)`` of summed masses (NaN when both are 0)."""
    a, b = float(np.sum(a)), float(np.sum(b))
    return a / (a + b) if a + b > 0 else float("nan")


@contextlib.contextmanager
def initial_part(sign):
    """Propagate only the positive (``sign = 1``) or negative (``-1``) part of the initial relevance."""
    original = E.initial_relevance

    def clipped(output, target):
        r, _f = original(output, target)
        r = r.clamp(min=0) if sign > 0 else r.clamp(max=0)
        return r, r.flatten(1).sum(1)

    E.initial_relevance = clipped
    try:
        yield
    finally:
        E.initial_relevance = original


def lrp(model, x, target, rules, layers=False, method="lrp", **params):
    return E.explain(
        model, torch.as_tensor(x), method=method, target=target, rules=rules,
        return_layers=layers, **params,
    )  # fmt: skip


def corr(a, b):
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def initial_relevance_of(model, x, target):
    """The initial relevance at the explained output ``(N, ...)`` (recorded from the engine)."""
    seen = []
    original = E.initial_relevance

    def record(output, t):
        r, f = original(output, t)
        seen.append(r.detach().cpu())
        return r, f

    E.initial_relevance = record
    try:
        lrp(model, x, target, None)
    finally:
        E.initial_relevance = original
    return torch.cat(seen)


# ------------------------------------------------------------------------------------------ 1. signed target
def signed_target(model, x, target, mask):
    """Initial relevance split by sign, each part propagated alone, per composite -> dict."""
    r0 = initial_relevance_of(model, x, target)
    r0 = r0 if r0.dim() == 3 else r0.reshape(len(x), 1, -1)
    start = on_off(r0, mask)
    f = r0.flatten(1).sum(1).double()
    facts = {
        "f_mean": float(f.mean()),
        "start_pos_mass_over_f": float(r0.clamp(min=0).flatten(1).sum(1).double().sum() / f.sum()),
        "start_neg_mass_over_f": float(-r0.clamp(max=0).flatten(1).sum(1).double().sum() / f.sum()),
    }
    if start is not None:
        facts["start_pos_on_sites"] = share(start["pos_on"], start["pos_off"])
        facts["start_neg_on_sites"] = share(start["neg_on"], start["neg_off"])
        facts["start_coverage"] = start["coverage"]
    per = {}
    for comp in ("conv-zplus", "conv-epsilon"):
        rules = COMPOSITES[comp]
        full = lrp(model, x, target, rules).relevance
        parts = {}
        for name, sign in (("from_pos", 1), ("from_neg", -1)):
            with initial_part(sign):
                parts[name] = lrp(model, x, target, rules).relevance
        row = {
            "linearity_max_abs": float((parts["from_pos"] + parts["from_neg"] - full).abs().max()),
            "full_scale": float(full.abs().max()),
        }
        for name, r in (("full", full), *parts.items()):
            s = r.sum(1).double().numpy()
            oo = on_off(r.sum(1, keepdim=True), mask)
            row[name] = {
                "sum_over_f": float(s.sum() / f.sum()),
                "net_on_sites_over_f": float((s * mask).sum() / f.sum()),
                "net_off_sites_over_f": float((s * ~mask).sum() / f.sum()),
                "pos_on_sites": share(oo["pos_on"], oo["pos_off"]),
                "neg_on_sites": share(oo["neg_on"], oo["neg_off"]),
                "auprc": M.auprc(s, mask),
                "rma": M.summarise(M.rma(s, mask)),
            }
        per[comp] = row
    facts["by_composite"] = per
    facts["coverage"] = float(mask.mean())
    return facts


# ------------------------------------------------------------------------------------------ 2. LRP vs gxi
def lrp_vs_gxi(model, x, target, mask, seed):
    gxi = E.explain(model, torch.as_tensor(x), method="gradient-x-input", target=target)
    out = {
        "corr_with_gxi": {},
        "auprc": {"gradient-x-input": M.auprc(gxi.relevance.sum(1).numpy(), mask)},
    }
    for comp, rules in COMPOSITES.items():
        r = lrp(model, x, target, rules, layers=True)
        out["corr_with_gxi"][comp] = corr(r.relevance, gxi.relevance)
        out["auprc"][f"lrp/{comp}"] = M.auprc(r.relevance.sum(1).numpy(), mask)
        if comp == "conv-zplus":
            f = r.target.double().sum()
            out["mass_share_by_layer"] = {
                k: float(v.double().sum() / f) for k, v in r.layers.items()
            }
    dls = E.explain(
        model, torch.as_tensor(x), method="deeplift-shap", target=target, n_shuffles=10, seed=seed
    )
    out["auprc"]["deeplift-shap-10"] = M.auprc(dls.relevance.sum(1).numpy(), mask)
    out["corr_deeplift_with_gxi"] = corr(dls.relevance, gxi.relevance)
    return out


def classifier_global_max(model, x, seed, n_shuffles=10):
    """Classifier CNN: per channel ``c`` of the global max pool, the head's input relevance ``w_c a_c`` on the
    windows and on dinucleotide-shuffled copies (the reference DeepLIFT-SHAP subtracts) -> dict."""
    from tangermeme.ersatz import dinucleotide_shuffle

    def pooled(xs):
        with torch.no_grad():
            h = model.maxpool(model.relu(model.bn(model.conv(xs))))
            return model.globalmax(model.block(h)).flatten(1).double()

    xt = torch.as_tensor(x)
    a = pooled(xt)  # (N, C)
    shuffled = dinucleotide_shuffle(xt, n=n_shuffles, random_state=seed)  # (N, n, 4, L)
    ref = (
        pooled(shuffled.reshape(-1, *xt.shape[1:]).float()).reshape(len(xt), n_shuffles, -1).mean(1)
    )
    w = model.head.weight[0].double().detach()  # task 0
    contrib, contrib_ref = a * w, ref * w  # (N, C)
    total = contrib.sum(1)
    kept = (contrib - contrib_ref).sum(1)
    per_channel_ratio = (a.mean(0) / ref.mean(0).clamp(min=1e-12)).numpy()
    abs_share = (contrib.abs().sum(0) / contrib.abs().sum()).numpy()
    low = per_channel_ratio < 1.1
    return {
        "head_bias": float(model.head.bias[0]),
        "sum_w_a_mean": float(total.mean()),
        "sum_w_a_ref_mean": float(contrib_ref.sum(1).mean()),
        "share_of_w_a_left_after_reference": float(kept.sum() / total.sum()),
        "channels": int(a.shape[1]),
        "channels_max_within_10pct_of_background": int(low.sum()),
        "abs_head_relevance_share_of_those_channels": float(abs_share[low].sum()),
        "per_channel_max_over_background": [round(float(v), 3) for v in per_channel_ratio],
        "per_channel_abs_share": [round(float(v), 4) for v in abs_share],
    }


# ------------------------------------------------------------------------------------------ 3. off-site
def layer_channel_shares(model, x, target, mask, rules, method="lrp", **params):
    """Per linear layer's input (top-down) and the input: per-channel on/off masses -> dict."""
    out = lrp(model, x, target, rules, layers=True, method=method, **params)
    res = {}
    for name, r in list(out.layers.items()) + [("input", out.relevance)]:
        oo = on_off(r, mask)
        if oo is None:
            continue
        off = oo["pos_off"]
        order = np.argsort(-off)
        cum = np.cumsum(off[order]) / max(off.sum(), 1e-300)
        res[name] = {
            "coverage": oo["coverage"],
            "pos_on_sites": share(oo["pos_on"], oo["pos_off"]),
            "neg_on_sites": share(oo["neg_on"], oo["neg_off"]),
            "neg_over_pos": float(oo["neg_on"].sum() + oo["neg_off"].sum())
            / max(float(oo["pos_on"].sum() + oo["pos_off"].sum()), 1e-300),
            "channels": len(off),
            "channels_for_half_of_off_site_pos": int(np.searchsorted(cum, 0.5) + 1),
            "top_off_site_channels": [
                {
                    "channel": int(c),
                    "share_of_off_site_pos": round(float(off[c] / max(off.sum(), 1e-300)), 3),
                    "its_pos_on_sites": round(share(oo["pos_on"][c], oo["pos_off"][c]), 3),
                }
                for c in order[:3]
            ],
            "_per_channel": oo,
        }
    return res


# ------------------------------------------------------------------------------------------ figures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, stem):
    plt = _plt()
    out = ROOT / "docs/figures"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / f"{stem}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return str(out / f"{stem}.png")


def figure_signed(key, facts):
    """Per composite: net relevance on and off the sites from the positive and negative start."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 2.8), sharey=True)
    for ax, comp in zip(axes, ("conv-zplus", "conv-epsilon")):
        row = facts["by_composite"][comp]
        labels = ("from_pos", "from_neg", "full")
        on = [row[k]["net_on_sites_over_f"] for k in labels]
        off = [row[k]["net_off_sites_over_f"] for k in labels]
        xs = np.arange(3)
        ax.bar(xs - 0.2, on, 0.4, label="on planted sites", color="#1b7837")
        ax.bar(xs + 0.2, off, 0.4, label="off sites", color="#999999")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(xs, ["positive start", "negative start", "sum (LRP)"], fontsize=8)
        ax.set_title(
            f"{comp}: AUPRC {row['full']['auprc']:.3f}, RMA {row['full']['rma']:.2f}", fontsize=8
        )
    axes[0].set_ylabel("input relevance / f_t")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"{key}: the initial relevance split by sign, each part propagated alone", fontsize=9
    )
    return save_png(fig, f"diagnosis_signed_{key.replace('/', '_')}")


def figure_layers(key, by_comp):
    """Per layer input (top-down): share of positive and negative relevance on the sites."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    names = None
    for comp, sh, colour in zip(by_comp, by_comp.values(), ("#b2182b", "#2166ac")):
        names = list(sh)
        xs = range(len(names))
        ax.plot(
            xs,
            [sh[k]["pos_on_sites"] for k in names],
            "o-",
            color=colour,
            label=f"{comp}: positive",
        )
        ax.plot(
            xs,
            [sh[k]["neg_on_sites"] for k in names],
            "x--",
            color=colour,
            label=f"{comp}: negative",
        )
    ax.plot(
        range(len(names)),
        [sh[k]["coverage"] for k in names],
        "s:",
        color="grey",
        label="site coverage",
    )
    ax.set_xticks(range(len(names)), names, rotation=30, fontsize=7)
    ax.set_ylabel("share of mass on planted sites")
    ax.set_ylim(0, 1)
    ax.set_title(f"{key}: LRP relevance at each layer's input (top-down)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return save_png(fig, f"diagnosis_layers_{key.replace('/', '_')}")


def figure_channels(key, layer, oo):
    """One layer: per channel, positive relevance mass on and off the sites (sorted by off-site mass)."""
    plt = _plt()
    order = np.argsort(-oo["pos_off"])
    total = oo["pos_on"].sum() + oo["pos_off"].sum()
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    xs = np.arange(len(order))
    ax.bar(xs, oo["pos_off"][order] / total, color="#999999", label="off sites")
    ax.bar(xs, oo["pos_on"][order] / total, bottom=oo["pos_off"][order] / total, color="#1b7837",
           label="on planted sites")  # fmt: skip
    ax.set_xticks(xs, [str(c) for c in order], fontsize=6)
    ax.set_xlabel("channel (sorted by off-site mass)", fontsize=8)
    ax.set_ylabel("share of positive mass")
    ax.set_title(f"{key}, conv-zplus, input of {layer}", fontsize=9)
    ax.legend(fontsize=7)
    return save_png(fig, f"diagnosis_channels_{key.replace('/', '_')}")


def figure_gxi(key, lrp_r, gxi_r, eps_r):
    """Per-position scatter of LRP (conv-zplus and conv-epsilon) against gradient x input."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.0))
    g = gxi_r.sum(1).flatten().numpy()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(g), min(len(g), 5000), replace=False)
    for ax, (name, r) in zip(axes, (("conv-zplus", lrp_r), ("conv-epsilon", eps_r))):
        v = r.sum(1).flatten().numpy()
        ax.scatter(g[pick], v[pick], s=2, alpha=0.4)
        ax.set_title(f"lrp ({name}): r = {np.corrcoef(g, v)[0, 1]:.6f}", fontsize=8)
        ax.set_xlabel("gradient x input", fontsize=8)
    axes[0].set_ylabel("LRP", fontsize=8)
    fig.suptitle(f"{key}: per-position relevance", fontsize=9)
    return save_png(fig, f"diagnosis_gxi_{key.replace('/', '_')}")


# ------------------------------------------------------------------------------------------ main
def diagnose(name, model, x, heads, seed):
    """Every measurement on one setup -> ``{"setup/head": facts}`` (and the figures)."""
    facts = {}
    for head, (target, sites) in heads.items():
        mask = Q._mask(sites, x.shape[2])
        key = f"{name}/{head}"
        t0 = time.perf_counter()
        fk = {"signed_target": signed_target(model, x, target, mask)}
        fk["figure_signed"] = figure_signed(key, fk["signed_target"])
        fk["lrp_vs_gxi"] = lrp_vs_gxi(model, x, target, mask, seed)
        gxi = E.explain(
            model, torch.as_tensor(x), method="gradient-x-input", target=target
        ).relevance
        fk["figure_gxi"] = figure_gxi(
            key, lrp(model, x, target, COMPOSITES["conv-zplus"]).relevance, gxi,
            lrp(model, x, target, COMPOSITES["conv-epsilon"]).relevance,
        )  # fmt: skip
        if name == "maxcnn":
            fk["global_max"] = classifier_global_max(model, x, seed)
        by_comp = {
            c: layer_channel_shares(model, x, target, mask, COMPOSITES[c])
            for c in ("conv-zplus", "conv-epsilon")
        }
        by_comp["plrp-lambda-0.25/conv-zplus"] = layer_channel_shares(
            model, x, target, mask, COMPOSITES["conv-zplus"], method="plrp-lambda", p_pos=0.25
        )
        fk["figure_layers"] = figure_layers(
            key, {c: by_comp[c] for c in ("conv-zplus", "conv-epsilon")}
        )
        hidden = [  # layers that carry relevance (a dead branch has none)
            k
            for k, v in by_comp["conv-zplus"].items()
            if k != "input" and np.isfinite(v["pos_on_sites"])
        ]
        worst = min(
            hidden,
            key=lambda k: (
                by_comp["conv-zplus"][k]["pos_on_sites"] / by_comp["conv-zplus"][k]["coverage"]
            ),
        )
        fk["worst_layer"] = worst
        fk["figure_channels"] = figure_channels(
            key, worst, by_comp["conv-zplus"][worst]["_per_channel"]
        )
        fk["layers"] = {
            c: {k: {kk: vv for kk, vv in v.items() if kk != "_per_channel"} for k, v in sh.items()}
            for c, sh in by_comp.items()
        }
        fk["seconds"] = time.perf_counter() - t0
        facts[key] = fk
        print(json.dumps({key: fk}, indent=1, default=float))
        sys.stdout.flush()
    return facts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setups", nargs="+", default=["maxcnn", "bpnet"], choices=list(Q.SETUPS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/diagnosis.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    facts = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.setups:
            if name == "bpnet":  # as trained when the diagnosis was measured (Q.setup_bpnet)
                model, x, heads = Q.setup_bpnet(args.seed, counts_at_mean=False)
            else:
                model, x, heads = Q.build(name, args.seed, Path(tmp) / name)
            facts.update(diagnose(name, model, x, heads, args.seed))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out) as handle:
        json.dump(
            {"seed": args.seed, "seconds": time.perf_counter() - t_all, "diagnosis": facts},
            handle, indent=1, default=float,
        )  # fmt: skip
    print(f"\nwrote {out} in {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
