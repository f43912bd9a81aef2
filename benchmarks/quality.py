"""Explanation quality on simulated setups that no default is tuned to (issue 12; not a timed test).

Setups (each trained here, briefly, from a seed):

- ``demo``: the demo's BPNet-style model (:class:`lrp.demo.model.DemoBPNet`), trained by
  :func:`lrp.demo.train.train` on a small :func:`lrp.demo.simulate.simulate_to` genome (simulated reads at
  the planted sites); tiles of the held-out chromosome; its profile and counts heads
  (:data:`lrp.demo.spec.TARGETS`).
- ``bpnet``: bpnet-lite's BPNet (16 filters, 4 dilated residual layers; ``nn.ReLU`` modules, so
  tangermeme's DeepLIFT sees them: ``tests/models.py``'s BPNetLike uses functional ReLUs, which DeepLIFT
  treats as linear) with a profile head (target ``reduction: profile``) and a counts head; trained on
  windows with planted Spi1/CEBPB sites whose profile peaks at the sites and whose counts rise with them
  (held-out counts against the number of sites: Pearson 0.94).
- ``expcnn``: a CNN with exponential first-layer activations (Koo & Ploenzke 2021), FOXA1/HNF4A presence
  (held-out AUROC 0.94).
- ``maxcnn``: the classifier CNN of :class:`lrp.demo.model.DemoCNN` (conv, batch norm, pooling, a dilated
  residual block, global max pool), CTCF/REST presence.
- ``grammar``: the classifier CNN with mean pooling on a sparse grammar: positive windows hold a SOX2 site 3 bp
  before a POU5F1 site (same strand) plus decoys; negative windows hold the same motifs unpaired. Only the
  pairs are ground truth.

Per method, composite and head: per-position AUROC and AUPRC of the projected relevance against the planted
sites (pooled), RMA, Gini, call precision, recall and F1 at the workflow's default FDR (:data:`CALL_FDR`,
:func:`call_scores`: the ``call_*`` columns under the shuffled null, each method's own relevance on
dinucleotide-shuffled copies of the setup's windows; ``call_*@F`` the same at each FDR of :data:`CALL_FDRS`;
``laplace_call_*`` under the Laplace null; ``+rc`` rows average the explanations of both strands), the
deletion gain over random order and the self-check's verdict (:mod:`lrp.evaluation.selfcheck`), and windows
per second. The methods as the workflow runs them by default also get the motif metrics: ``tfs_named`` (the
planted TFs a correct call names, TOMTOM against JASPAR 2026 CORE vertebrates as the pipeline labels them)
and ``tfs_denovo`` (the planted TFs a positive modisco-lite pattern matches). ``auto`` rows choose the
composite by the deletion test (:func:`lrp.engine.auto.choose_rules`); under that choice the fixed-p sweep
(0.1, 0.25, 0.5, and plrp-m 0.25) runs beside ``p`` per layer (:func:`lrp.engine.auto.knee_p`). Every
composite of :data:`COMPOSITES` (``zero-root``: the default with relevance against a zero input, LRP's own)
also runs lrp and plrp-lambda 0.25. Sizes (:data:`N_BP`, :data:`N_AUTO`, :data:`DELETION`) are set for a
run of about 6 minutes on 2 idle cores (378 s measured).

Run: ``.venv/bin/python benchmarks/quality.py [--setups demo bpnet ...]``; prints a table and writes
``benchmarks/results/quality.json``. The diagnosis of ``docs/plrp-method.md`` (its figures) is
``benchmarks/diagnose.py``, on these setups.
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
from bpnetlite.bpnet import BPNet

from lrp.attribution.attribute import reverse_complement_ohe
from lrp.core.atomic import atomic_open
from lrp.demo import simulate as S
from lrp.demo.model import build_bpnet, build_model
from lrp.demo.spec import TARGETS as DEMO_TARGETS
from lrp.demo.train import auroc, one_hot, read_fasta
from lrp.demo.train import train as train_demo
from lrp.engine import auto
from lrp.engine.explain import explain
from lrp.engine.scoring import target_function
from lrp.evaluation import metrics as M
from lrp.evaluation.selfcheck import deletion_gain, selfcheck
from lrp.motifs import null as NULL
from lrp.motifs.calls import annotate, tomtom_best
from lrp.motifs.database import select_motifs
from lrp.motifs.learned import modisco_motifs, trim_bounds
from lrp.motifs.seqlets import call_seqlets

COMPOSITES = {
    "default": None,
    "conv-epsilon": {"conv": "epsilon"},
    "conv-gamma": {"conv": {"rule": "gamma", "gamma": 0.25}},
    "zero-root": {"root": "zero"},
}
LRP_RUNS = (
    ("lrp", "lrp", {}),
    ("plrp-lambda-0.1", "plrp-lambda", {"p_pos": 0.1}),
    ("plrp-lambda-0.25", "plrp-lambda", {"p_pos": 0.25}),
    ("plrp-lambda-0.5", "plrp-lambda", {"p_pos": 0.5}),
    ("plrp-m-0.25", "plrp-m", {"p_pos": 0.25}),
)
OTHER_RUNS = (
    ("gradient-x-input", "gradient-x-input", {}),
    ("deeplift-shap-20", "deeplift-shap", {"n_shuffles": 20}),
)
N_BP = 64_000  # bp explained per setup: 64 windows of the demo's 1 kb, 320 of the 200 bp setups
N_AUTO = 32  # windows the auto choices look at
DELETION = {"n_steps": 5, "n_random": 1}  # the deletion test's size here (the run fits ~10 minutes)
RC_RUNS = ("plrp-lambda-0.25", "deeplift-shap-20")  # also run with reverse-complement averaging


# ------------------------------------------------------------------------------------------ simulation
class Planter:
    """Window simulator: human-like Markov background with JASPAR sites sampled at relative score >= 0.9."""

    def __init__(self, tfs, seed):
        self.motifs, _ = select_motifs(names=list(tfs))
        self.names = list(self.motifs)
        self.transition = S.transition_matrix()
        bg = S.stationary(self.transition)
        self.pwms = {t: S.log_odds(m, bg) for t, m in self.motifs.items()}
        self.rng = np.random.default_rng(seed)

    def background(self, n, length):
        """(n, L) uint8 codes."""
        return np.stack([S.markov_chain(length, self.transition, self.rng) for _ in range(n)])

    def place(self, codes, tf, start, strand):
        """Write one sampled site of ``tf`` at ``start`` -> (start, end, tf)."""
        site, _ = S.sample_site(self.motifs[tf], self.pwms[tf], self.rng, 0.9)
        if strand == "-":
            site = 3 - site[::-1]
        codes[start : start + len(site)] = site
        return start, start + len(site), tf

    def free_start(self, taken, width, length, margin=8):
        """A start whose ``[start - margin, start + width + margin)`` overlaps no taken interval."""
        for _ in range(200):
            s = int(self.rng.integers(margin, length - width - margin))
            if all(s + width + margin <= a or s >= b + margin for a, b, *_ in taken):
                return s
        return None

    def width(self, tf):
        return self.motifs[tf].shape[1]


def _onehot(codes):
    """(n, L) codes -> (n, 4, L) float32."""
    return np.eye(4, dtype=np.float32)[codes].transpose(0, 2, 1).copy()


def _mask(sites, length):
    """Per window ``[(start, end, tf), ...]`` -> ``(N, L)`` bool: positions on a planted site."""
    mask = np.zeros((len(sites), length), bool)
    for i, rows in enumerate(sites):
        for s, e, *_ in rows:
            mask[i, s:e] = True
    return mask


def _window_sites(windows, table):
    """Sites of ``table`` (chrom, start, end, name) in each of ``windows`` -> per window
    ``[(start, end, tf), ...]`` in window coordinates (cut at the window's edges)."""
    out = []
    for chrom, start, end in windows[["chrom", "start", "end"]].itertuples(index=False):
        hit = table[(table["chrom"] == chrom) & (table["start"] < end) & (table["end"] > start)]
        out.append(
            [
                (max(a - start, 0), min(b, end) - start, tf)
                for a, b, tf in hit[["start", "end", "name"]].itertuples(index=False)
            ]
        )
    return out


def _fit(model, loss_of, batches, epochs, lr, seed):
    """Adam over ``batches()`` (a list of tensors per step) for ``epochs``; returns the model in eval."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for batch in batches():
            opt.zero_grad()
            loss_of(model, *batch).backward()
            opt.step()
    return model.eval()


def _minibatches(arrays, size, rng):
    order = rng.permutation(len(arrays[0]))

    def gen():
        for b in range(0, len(order), size):
            idx = order[b : b + size]
            yield [torch.as_tensor(a[idx]) for a in arrays]

    return gen


# ------------------------------------------------------------------------------------------ setups
def setup_demo(seed, work):
    """The demo's BPNet-style model (profile and counts heads) trained by the demo's own functions, on a
    smaller genome than ``make demo``'s; held-out tiles."""
    S.simulate_to(work, seed=seed, chrom_lengths=(150_000,) * 3 + (80_000,))
    train_demo(
        work / "genome.fa",
        work / "known_sites.bed",
        work / "model",
        seed=seed,
        threads=torch.get_num_threads(),
        progress=False,
    )
    meta = json.loads((work / "model/model.json").read_text())
    model = build_bpnet(**meta["kwargs"])
    model.load_state_dict(torch.load(work / "model/model_state.pt"))
    model.eval()
    genome = read_fasta(work / "genome.fa")
    chrom = max(genome)
    length = meta["length"]
    starts = np.arange(0, len(genome[chrom]) - length + 1, length // 2)[: N_BP // length]
    x = np.stack([one_hot(genome[chrom][s : s + length]) for s in starts])
    windows = pd.DataFrame({"chrom": chrom, "start": starts, "end": starts + length})
    table = pd.read_csv(work / "known_sites.bed", sep="\t", header=None).iloc[:, :4]
    table.columns = ["chrom", "start", "end", "name"]
    sites = _window_sites(windows, table)
    return model, x, {head: (dict(DEMO_TARGETS[head]), sites) for head in DEMO_TARGETS}


def setup_bpnet(seed, n_train=2400, length=200, trim=20, counts_at_mean=True):
    """bpnet-lite's BPNet with a profile and a counts head on planted Spi1 / CEBPB sites.

    ``counts_at_mean=False`` trains it as before 2026-12-07, the counts head from bpnet-lite's own start: it
    stayed at the mean, and the trunk it shares with the profile head is the one on which z-plus on hidden
    convolutions put the profile head's relevance off the sites (``benchmarks/diagnose.py`` reproduces the
    diagnosis of docs/plrp-method.md on it)."""
    pl = Planter(["SPI1", "CEBPB"], seed)
    strength = dict(zip(pl.names, (3.0, 1.5)))

    def draw(n):
        codes = pl.background(n, length)
        sites = []
        for i in range(n):
            rows = []
            for _ in range(int(pl.rng.integers(0, 4))):
                tf = pl.names[int(pl.rng.integers(2))]
                s = pl.free_start(rows, pl.width(tf), length)
                if s is not None:
                    rows.append(pl.place(codes[i], tf, s, "+" if pl.rng.random() < 0.5 else "-"))
            sites.append(rows)
        pos = np.arange(trim, length - trim)
        lam = np.full((n, len(pos)), 0.02)
        for i, rows in enumerate(sites):
            for s, e, tf in rows:
                lam[i] += strength[tf] * np.exp(-((pos - (s + e) / 2) ** 2) / (2 * 4.0**2))
        prof = (lam / lam.sum(1, keepdims=True)).astype(np.float32)
        counts = np.log1p(20 * lam.sum(1)).astype(np.float32)
        return _onehot(codes), prof, counts, sites

    x, prof, counts, _ = draw(n_train)

    def loss_of(model, xb, pb, cb):
        profile, counts = model(xb)
        mnll = -(pb * F.log_softmax(profile[:, 0], -1)).sum(-1).mean()
        return mnll + F.mse_loss(counts[:, 0], cb)

    torch.manual_seed(seed)
    model = BPNet(
        n_filters=16, n_layers=4, n_outputs=1, n_control_tracks=0, trimming=trim, verbose=False
    )
    if counts_at_mean:
        # the counts head starts at the mean, as the demo's model does (lrp.demo.model): from bpnet-lite's
        # start it stayed near the mean (held-out 5.97-6.05 log reads for 0-3 sites, Pearson with the
        # sites 0.35; started at the mean: 4.70-7.57, Pearson 0.94)
        nn.init.zeros_(model.linear.weight)
        nn.init.constant_(model.linear.bias, float(counts.mean()))
    rng = np.random.default_rng(seed)
    _fit(model, loss_of, _minibatches([x, prof, counts], 64, rng), 10, 3e-3, seed)
    xe, _, _, sites = draw(N_BP // length)
    heads = {
        "profile": ({"output": 0, "reduction": "profile"}, sites),
        "counts": ({"output": 1, "index": 0}, sites),
    }
    return model, xe, heads


class Exp(nn.Module):
    """Element-wise ``exp`` (Koo & Ploenzke 2021's first-layer activation)."""

    def forward(self, x):
        return torch.exp(x)


class ExpCNN(nn.Module):
    """Conv(4->32, 19) + exp + MaxPool(4) + Conv(32->32, 7) + ReLU + global max + Linear -> (N, 1)."""

    def __init__(self, length=200):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 32, 19, padding=9)
        # small exp activations at the start: with a zero bias (8 epochs, lr 2e-3, 3000 windows) the
        # model did not learn (held-out AUROC 0.54); bias -2, lr 1e-3, 30 epochs, 6000 windows: 0.94
        nn.init.normal_(self.conv1.weight, std=0.05)
        nn.init.constant_(self.conv1.bias, -2.0)
        self.act1 = Exp()
        self.pool1 = nn.MaxPool1d(4)
        self.conv2 = nn.Conv1d(32, 32, 7, padding=3)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool1d(length // 4)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        h = self.pool1(self.act1(self.conv1(x)))
        return self.head(self.pool2(self.act2(self.conv2(h))).flatten(1))


def _presence(pl, n, length, tfs, n_max):
    codes = pl.background(n, length)
    sites, y = [], np.zeros(n, np.float32)
    for i in range(n):
        rows = []
        if pl.rng.random() < 0.5:
            for _ in range(int(pl.rng.integers(1, n_max + 1))):
                tf = tfs[int(pl.rng.integers(len(tfs)))]
                s = pl.free_start(rows, pl.width(tf), length)
                if s is not None:
                    rows.append(pl.place(codes[i], tf, s, "+" if pl.rng.random() < 0.5 else "-"))
            y[i] = 1.0
        sites.append(rows)
    return _onehot(codes), y, sites


def _bce(model, xb, yb):
    return F.binary_cross_entropy_with_logits(model(xb)[:, 0], yb)


def setup_expcnn(seed, n_train=6000, length=200):
    """The exponential-activation CNN on FOXA1 / HNF4A presence."""
    pl = Planter(["FOXA1", "HNF4A"], seed)
    x, y, _ = _presence(pl, n_train, length, pl.names, 2)
    torch.manual_seed(seed)
    model = ExpCNN(length)
    _fit(model, _bce, _minibatches([x, y], 64, np.random.default_rng(seed)), 30, 1e-3, seed)
    xe, _, sites = _presence(pl, N_BP // length, length, pl.names, 2)
    return model, xe, {"logit": (None, sites)}


def setup_grammar(seed, n_train=3000, length=200, gap=3):
    """Mean-pooled demo CNN on SOX2 -gap- POU5F1 pairs among unpaired decoys of the same motifs."""
    pl = Planter(["SOX2", "POU5F1"], seed)
    a, b = pl.names

    def draw(n):
        codes = pl.background(n, length)
        truth, y = [], np.zeros(n, np.float32)
        for i in range(n):
            rows, pair = [], []
            if pl.rng.random() < 0.5:
                width = pl.width(a) + gap + pl.width(b)
                s = pl.free_start(rows, width, length)
                strand = "+" if pl.rng.random() < 0.5 else "-"
                first, second = (a, b) if strand == "+" else (b, a)
                pair = [pl.place(codes[i], first, s, strand)]
                pair.append(pl.place(codes[i], second, s + pl.width(first) + gap, strand))
                rows += pair
                y[i] = 1.0
            for _ in range(int(pl.rng.integers(1, 3))):  # decoys, never at the pair's spacing
                tf = pl.names[int(pl.rng.integers(2))]
                s = pl.free_start(rows, pl.width(tf), length, margin=12)
                if s is not None:
                    rows.append(pl.place(codes[i], tf, s, "+" if pl.rng.random() < 0.5 else "-"))
            truth.append(pair)
        return _onehot(codes), y, truth

    x, y, _ = draw(n_train)
    model = build_model(n_tasks=1, length=length, filters=16, pool="mean", seed=seed)
    _fit(model, _bce, _minibatches([x, y], 64, np.random.default_rng(seed)), 10, 3e-3, seed)
    xe, _, truth = draw(N_BP // length)
    return model, xe, {"logit": (None, truth)}


def setup_maxcnn(seed, n_train=3000, length=200):
    """The max-pooled classifier CNN (:class:`lrp.demo.model.DemoCNN`: conv, batch norm, pooling, a dilated
    residual block, global max) on CTCF / REST presence."""
    pl = Planter(["CTCF", "REST"], seed)
    x, y, _ = _presence(pl, n_train, length, pl.names, 2)
    model = build_model(n_tasks=1, length=length, filters=16, pool="max", seed=seed)
    _fit(model, _bce, _minibatches([x, y], 64, np.random.default_rng(seed)), 8, 3e-3, seed)
    xe, _, sites = _presence(pl, N_BP // length, length, pl.names, 2)
    return model, xe, {"logit": (None, sites)}


def allow_exp():
    """tangermeme's DeepLIFT gets its rescale rule for :class:`Exp` (it knows only its own list of
    activation modules; the engine passes ``aten.exp`` as any element-wise activation)."""
    import tangermeme.deep_lift_shap as dls
    from tangermeme._deep_lift_utils import _build_nonlinear_ops, _nonlinear

    dls._build_nonlinear_ops = lambda extra=None: _build_nonlinear_ops(
        {Exp: _nonlinear, **(extra or {})}
    )


# ------------------------------------------------------------------------------------------ measuring
def judge_for(f):
    """The deletion judge of :func:`lrp.engine.auto.choose_rules`: mean deletion gain over random."""
    return lambda x, scores: float(np.nanmean(deletion_gain(f, x, scores, **DELETION)))


#: the shared target FDR every method is called at (the workflow's default, one owner)
CALL_FDR = NULL.FDR
#: the call metrics are also given at these FDRs (1: every seqlet, no null)
CALL_FDRS = (0.05, 0.2, 1.0)
MAX_Q = 0.05  #: a call or a de novo motif names a TF when its TOMTOM q against it is at most this


def motif_database():
    """The workflow's default motif database (JASPAR 2026 CORE vertebrates, offline) as
    ``(ids, names, pfms)``, :func:`lrp.motifs.database.load_motif_db`'s form."""
    motifs, ids = select_motifs()
    return [ids[n] for n in motifs], list(motifs), list(motifs.values())


def _named(db, significant):
    """TOMTOM's significant database rows -> the lower-case TF names they hold."""
    return {db[1][j].lower() for j in significant}


def call_scores(scores, sites, seqlets, fdr=CALL_FDR, null_scores=None, x=None, db=None):
    """Calls at ``fdr`` against the planted sites: precision, recall and F1 of the positive seqlets that
    pass the null (:func:`lrp.motifs.null.filter_seqlets`, the pipeline's calls); a call is correct
    when it overlaps a site, a site is found when a call overlaps it.

    ``sites``: per window ``[(start, end, tf), ...]``; ``seqlets``: :func:`lrp.motifs.seqlets.call_seqlets`
    of ``scores`` (proposed once, tested at every FDR); ``null_scores (n, L)``: the shuffled null (the
    method's projected relevance on dinucleotide-shuffled windows), ``None``: the Laplace null fitted to
    ``scores``. With the one-hot windows ``x (N, 4, L)`` and the motif database ``db``, each call is
    labelled by TOMTOM as the pipeline labels it (:func:`lrp.motifs.calls.annotate`) and
    ``tfs_named`` lists the planted TFs with a site overlapped by a call that names them (best match or
    another match with q <= :data:`MAX_Q`)."""
    length = scores.shape[1]
    mask = _mask(sites, length)
    kept, info = NULL.filter_seqlets(scores, seqlets, fdr=fdr, null_scores=null_scores)
    kept = kept[kept["sign"] > 0].reset_index(drop=True)
    flat = [(r, a, b, tf) for r, rows in enumerate(sites) for a, b, tf in rows]
    csum = np.pad(mask.cumsum(1), ((0, 0), (1, 0)))
    e, st, en = (kept[c].to_numpy() for c in ("example_idx", "start", "end"))
    correct = (csum[e, en] - csum[e, st]) > 0
    found = sum(bool(((e == r) & (st < b) & (en > a)).any()) for r, a, b, _ in flat)
    p = correct.mean() if len(kept) else float("nan")
    r = found / len(flat) if flat else float("nan")
    f1 = 2 * p * r / (p + r) if len(kept) and flat and p + r > 0 else 0.0
    out = {
        "call_precision": p,
        "call_recall": r,
        "call_f1": f1,
        "n_calls": len(kept),
        "n_seqlets": int((seqlets["sign"] > 0).sum()),
        "null_threshold": info["threshold_pos"],
    }
    if db is not None:
        calls = pd.DataFrame({"row": e, "window_start": st, "window_end": en})
        calls = annotate(calls, x, db, max_q=MAX_Q, n_jobs=torch.get_num_threads())
        names = [set(filter(None, m.lower().split(","))) for m in calls["matches"]]
        named = {
            tf
            for (r, a, b, tf) in flat
            for k in np.flatnonzero((e == r) & (st < b) & (en > a))
            if tf.lower() in names[k]
        }
        out["tfs_named"] = sorted(named)
    return out


def denovo_tfs(x, hypothetical, db):
    """Planted-TF candidates found de novo: modisco-lite (:func:`lrp.motifs.learned.modisco_motifs`, the
    workflow's ``motifs.method: modisco``) on the hypothetical scores, each positive pattern trimmed as
    the workflow trims it and TOMTOM-matched against ``db`` -> ``(names, n_patterns)``: the lower-case TF
    names of every database motif a positive pattern matches with q <= :data:`MAX_Q`."""
    motifs = modisco_motifs({"ohe": x, "hypothetical": hypothetical})
    pfms = []
    for m in motifs:
        if m["source"].startswith("modisco_pos"):
            a, b = trim_bounds(m["cwm"])
            pfms.append(m["pfm"][:, a:b])
    if not pfms:
        return set(), 0
    res = tomtom_best(pfms, db[2], n_jobs=torch.get_num_threads(), max_q=MAX_Q)
    return set().union(*(_named(db, sig) for sig in res["significant"])), len(pfms)


def measure(model, x, target, sites, method, params, f, rc=False, seed=0, db=None):
    """Explain ``x`` (and, with ``rc``, its reverse complement, mapped back and averaged) and score it
    -> dict of metrics (and the relevance). The calls' shuffled null is the same explanation of
    dinucleotide-shuffled copies of (a seeded sample of) ``x`` (:func:`lrp.motifs.null.shuffled_windows`).
    With the motif database ``db``: the planted TFs the calls name (``tfs_named``) and the ones
    modisco-lite finds de novo (``tfs_denovo``), of ``tfs_planted``."""

    def explained(xs):
        out = explain(model, torch.as_tensor(xs), method=method, target=target, **params)
        if rc:
            back = explain(
                model,
                torch.as_tensor(reverse_complement_ohe(xs)),
                method=method,
                target=target,
                **params,
            )
            out["relevance"] = (
                out.relevance + torch.as_tensor(reverse_complement_ohe(back.relevance.numpy()))
            ) / 2
            out["hypothetical"] = (
                out.hypothetical
                + torch.as_tensor(reverse_complement_ohe(back.hypothetical.numpy()))
            ) / 2
        return out

    mask = _mask(sites, x.shape[2])
    t0 = time.perf_counter()
    out = explained(x)
    seconds = time.perf_counter() - t0
    scores = out.relevance.sum(1).numpy().astype(np.float64)
    rows = NULL.null_rows(len(x), NULL.NULL_WINDOWS, seed)
    shuffled = NULL.shuffled_windows(x[rows], seed)
    null_scores = explained(shuffled).relevance.sum(1).numpy().astype(np.float64)
    rules = params.get("rules")
    check = selfcheck(f, x, scores, mask, method=method, rules=rules, target=target, **DELETION)
    row = {
        "auroc": auroc(mask.ravel().astype(float), scores.ravel()),
        "auprc": M.auprc(scores, mask),
        "auprc_random": float(mask.mean()),
        "rma": M.summarise(M.rma(scores, mask)),
        "gini": M.summarise(M.relevance_gini(out.relevance.numpy())),
        "deletion_gain": check["deletion"]["gain"],
        "deletion": check["deletion"]["verdict"],
        "flagged": check["flagged"],
        "windows_per_s": len(x) / seconds,
    }
    seqlets = call_seqlets(scores)
    for fdr in dict.fromkeys((*CALL_FDRS, CALL_FDR)):
        at = call_scores(scores, sites, seqlets, fdr, null_scores, x=x, db=db)
        row.update({f"{k}@{fdr:g}": v for k, v in at.items() if k != "n_seqlets"})
        if fdr == CALL_FDR:  # the row's own columns: the workflow's default
            row.update(at)
    laplace = call_scores(scores, sites, seqlets, CALL_FDR)
    row.update({f"laplace_{k}": v for k, v in laplace.items() if k != "n_seqlets"})
    if db is not None:
        planted = sorted({tf for rows_ in sites for *_, tf in rows_})
        found, n_patterns = denovo_tfs(x, out.hypothetical.numpy(), db)
        row["tfs_planted"] = planted
        row["tfs_denovo"] = [tf for tf in planted if tf.lower() in found]
        row["n_patterns"] = n_patterns
    return row, out


def run_head(model, x, target, sites, seed, db):
    """Every method and composite on one head -> ``(rows, meta)``. The rows of the methods as the
    workflow runs them by default (gradient x input, deeplift-shap, lrp and plrp-lambda 0.25 with the
    default composite, both strands averaged too) also get the motif metrics (``db``)."""
    f = target_function(model, target)
    rows = []

    def add(name, rules, method, params, **kw):
        extra = {"seed": seed} if method == "deeplift-shap" else {}
        m, _ = measure(model, x, target, sites, method, {**params, **extra}, f, seed=seed, **kw)
        rows.append({"method": name, "rules": rules, **m})

    for name, method, params in OTHER_RUNS:
        add(name, "-", method, params, db=db)
    for comp, rules in COMPOSITES.items():
        for name, method, params in LRP_RUNS[:1] + LRP_RUNS[2:3]:  # lrp, plrp-lambda-0.25
            motifs = db if comp == "default" else None
            add(name, comp, method, {**params, "rules": rules}, db=motifs)
    for name, method, params in OTHER_RUNS + LRP_RUNS:
        if name in RC_RUNS:
            rules = "default" if "plrp" in name else "-"
            add(f"{name}+rc", rules, method, params, rc=True, db=db)
    t0 = time.perf_counter()
    chosen = auto.choose_rules(model, x, target, judge_for(f), n=N_AUTO, seed=seed)
    t_rules = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_layers = auto.knee_p(model, x, target, n=N_AUTO, seed=seed, rules=chosen["rules"])
    t_p = time.perf_counter() - t0
    autos = LRP_RUNS + (("plrp-lambda-knee", "plrp-lambda", {"p_pos": 0.0, "p_layers": p_layers}),)
    for name, method, params in autos:
        add(name, f"auto:{chosen['choice']}", method, {**params, "rules": chosen["rules"]})
    meta = {
        "auto_rules": chosen,
        "auto_rules_seconds": t_rules,
        "knee_p": p_layers,
        "knee_p_seconds": t_p,
    }
    return rows, meta


SETUPS = {
    "demo": setup_demo,
    "bpnet": setup_bpnet,
    "expcnn": setup_expcnn,
    "grammar": setup_grammar,
    "maxcnn": setup_maxcnn,
}


def build(name, seed, work):
    if name == "demo":
        return setup_demo(seed, work)
    return SETUPS[name](seed)


def print_table(results):
    cols = (
        "auroc",
        "auprc",
        "rma",
        "gini",
        "deletion_gain",
        "call_precision",
        "call_recall",
        "call_f1",
        "laplace_call_f1",
        "windows_per_s",
    )

    def tfs(r, key):
        return f"{len(r[key])}/{len(r['tfs_planted'])}" if key in r else "-"

    for key, res in results.items():
        rows = res["rows"]
        print(
            f"\n## {key}  (random AUPRC {rows[0]['auprc_random']:.3f}; auto: "
            f"{res['meta']['auto_rules']['choice']}, knee p {res['meta']['knee_p']})"
        )
        head = "".join(f"{c[:9]:>10}" for c in cols)
        print(f"{'method':<20}{'rules':<20}{head}{'named':>7}{'denovo':>7}  check")
        for r in rows:
            vals = "".join(
                f"{r[c]:>10.1f}" if c == "windows_per_s" else f"{r[c]:>10.3f}" for c in cols
            )
            flag = " FLAG" if r["flagged"] else ""
            named, denovo = tfs(r, "tfs_named"), tfs(r, "tfs_denovo")
            print(
                f"{r['method']:<20}{r['rules']:<20}{vals}{named:>7}{denovo:>7}  {r['deletion']}{flag}"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/quality.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    allow_exp()
    db = motif_database()
    results = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.setups:
            t0 = time.perf_counter()
            model, x, heads = build(name, args.seed, Path(tmp) / name)
            t_train = time.perf_counter() - t0
            for head, (target, sites) in heads.items():
                rows, meta = run_head(model, x, target, sites, args.seed, db)
                meta["train_seconds"] = t_train
                meta["n_windows"], meta["length"] = int(x.shape[0]), int(x.shape[2])
                results[f"{name}/{head}"] = {"rows": rows, "meta": meta}
                print_table({f"{name}/{head}": results[f"{name}/{head}"]})
                sys.stdout.flush()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out) as handle:
        json.dump(
            {
                "seed": args.seed,
                "seconds": time.perf_counter() - t_all,
                "results": results,
            },
            handle,
            indent=1,
            default=lambda v: None if isinstance(v, float) and math.isnan(v) else str(v),
        )
    print(f"\nwrote {out} in {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
