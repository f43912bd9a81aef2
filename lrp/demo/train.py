"""Train the demo BPNet on the simulated genome's assay; report held-out profile and counts metrics; save it
as .pt2 and a state dict.

The assay is :func:`lrp.demo.simulate.expected_coverage` of the planted sites (``known_sites.bed``); the
observed reads per bp are one Poisson draw from it per chromosome, made with the training seed. The last
chromosome is held out (tiles with stride ``length // 2``). Each epoch draws fresh training windows from the
other chromosomes, half of them placed to contain a random site, half uniform, each reverse-complemented (its
profile reversed) with probability 1/2. The loss is BPNet's: the multinomial negative log-likelihood of the
observed profile under the profile head's softmax (without the terms that do not depend on the model), plus
``counts_weight`` times the squared error of the counts head against ``log(1 + reads in the window)``; Adam
with a cosine decay, the counts head starting from zero weights and the training tiles' mean log reads and
learning ``COUNTS_HEAD_LR`` times faster than the rest (at one rate it stays near the mean within the demo's
budget: held-out counts Pearson about 0.2).

``training.json`` keys: ``seed``, ``heldout`` (on the test tiles: ``profile_pearson`` and
``profile_pearson_expected``, the mean over tiles holding a site of the Pearson correlation between the
predicted profile (softmax) and the observed reads / the expected coverage; ``profile_pearson_per_tf``, the
same over tiles holding a site of each TF (``any``: any site); ``profile_nll_per_read``, the profile loss per
observed read over all tiles (a uniform profile gives ``log(length)``); ``counts_pearson`` and
``counts_spearman`` of the predicted against the observed ``log(1 + reads)`` over all tiles;
``n_windows_with_site``), ``losses``, ``profile_losses``, ``counts_losses`` (per epoch), ``counts_weight``,
``seconds``, ``epochs``, ``threads``, ``batch_size``, ``windows_per_epoch``, ``lr``, ``length``,
``train_chroms``, ``test_chrom``, ``n_test_windows``, ``test_positives`` (tiles holding a site: ``any`` and
per TF), ``torch``.
"""

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lrp.core.atomic import atomic_open
from lrp.core.errors import input_error
from lrp.demo.spec import BUILDER
from lrp.demo.spec import TARGETS as HEADS

log = logging.getLogger("plrp")

ALPHABET = "ACGT"
#: the counts head's learning rate / the trunk's: its weights act on means over the window's positions, which
#: vary little (sd about 0.04 across windows), so they must grow to tens; Adam moves each weight by about
#: ``lr`` per step
COUNTS_HEAD_LR = 10.0
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(ALPHABET):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i


def read_fasta(path):
    """FASTA -> {name: upper-case sequence} (names cut at the first space)."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, None, "FASTA file not found", "check --fasta")
    genome, name, parts = {}, None, []
    with open(path) as handle:
        for line in handle:
            if line.startswith(">"):
                if name is not None:
                    genome[name] = "".join(parts).upper()
                name, parts = line[1:].split()[0] if line[1:].strip() else "", []
                if not name or name in genome:
                    raise input_error(
                        path,
                        f"header {line.strip()!r}",
                        "empty or repeated name",
                        "give each sequence a unique name",
                    )
            elif name is None and line.strip():
                raise input_error(
                    path, "line 1", "sequence before the first '>' header", "give a FASTA file"
                )
            else:
                parts.append(line.strip())
    if name is not None:
        genome[name] = "".join(parts).upper()
    if not genome:
        raise input_error(path, None, "no sequences", "give a FASTA file")
    return genome


def read_sites(path, chrom_sizes):
    """BED6 of known sites -> list of (chrom, start, end, name), validated against ``chrom_sizes``."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, None, "known-sites BED not found", "check --sites")
    sites = []
    with open(path) as handle:
        for k, line in enumerate(handle, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 4:
                raise input_error(
                    path, f"line {k}", f"{len(f)} columns", "give BED with a name column"
                )
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError as err:
                raise input_error(
                    path,
                    f"line {k}",
                    "start/end are not integers",
                    "give 0-based integer coordinates",
                ) from err
            if f[0] not in chrom_sizes:
                raise input_error(
                    path,
                    f"line {k}",
                    f"chromosome {f[0]} is not in the FASTA",
                    "use the sites simulated with this genome",
                )
            if not 0 <= start < end <= chrom_sizes[f[0]]:
                raise input_error(
                    path,
                    f"line {k}",
                    f"interval {start}-{end} outside {f[0]}",
                    "give intervals inside the chromosome",
                )
            sites.append((f[0], start, end, f[3]))
    if not sites:
        raise input_error(path, None, "no sites", "give the known_sites.bed of the simulation")
    return sites


def one_hot(seq):
    """Sequence str -> (4, L) float32 one-hot in ACGT order (other letters all zero)."""
    codes = _CODE[np.frombuffer(seq.encode(), dtype=np.uint8)]
    return np.eye(5, 4, dtype=np.float32)[codes].T.copy()


class Labeller:
    """Window labels from sites: ``labels(chrom, starts)`` -> (n, 1 + n_tfs) float32."""

    def __init__(self, sites, tfs, length):
        self.length, self.tfs = length, list(tfs)
        self.by = {}
        for chrom in {s[0] for s in sites}:
            for t, tf in enumerate(self.tfs):
                rows = sorted((s[1], s[2]) for s in sites if s[0] == chrom and s[3] == tf)
                arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
                # suffix minimum of the ends: the shortest end among sites from index i on
                emin = np.minimum.accumulate(arr[::-1, 1])[::-1].copy()
                self.by[chrom, t] = (arr[:, 0], emin)

    def labels(self, chrom, starts):
        starts = np.asarray(starts, dtype=np.int64)
        out = np.zeros((len(starts), 1 + len(self.tfs)), dtype=np.float32)
        for t in range(len(self.tfs)):
            s, emin = self.by.get((chrom, t), (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            if not len(s):
                continue
            lo = np.searchsorted(s, starts, side="left")  # first site starting in the window
            # sites from lo on start at >= window start; one is contained iff the shortest end fits
            # (sites starting after the window end also end after it)
            ok = (lo < len(s)) & (emin[np.minimum(lo, len(s) - 1)] <= starts + self.length)
            out[:, 1 + t] = ok
        out[:, 0] = out[:, 1:].max(1)
        return out


def auroc(y, score):
    """Area under the ROC curve (ties averaged); NaN when y has one class."""
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, score))


@contextlib.contextmanager
def deterministic():
    """``torch.use_deterministic_algorithms(True)`` inside the block, the caller's setting after it."""
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


def train(
    fasta,
    sites,
    out_dir,
    seed=0,
    length=1000,
    epochs=10,
    threads=2,
    batch_size=64,
    windows_per_epoch=1600,
    lr=4e-3,
    filters=32,
    layers=6,
    counts_weight=None,
    test_chrom=None,
    progress=True,
):
    """Train the demo BPNet and write ``model.pt2``, ``model_state.pt``, ``model.json``, ``training.json``
    into ``out_dir``; returns the training summary (dict).

    ``counts_weight``: the counts loss's weight; None takes chrombpnet's rule, the median reads of the
    training chromosomes' ``length`` tiles / 10.
    """
    from lrp.demo.model import build_bpnet
    from lrp.demo.simulate import expected_coverage

    t0 = time.perf_counter()
    torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    genome = read_fasta(fasta)
    sizes = {c: len(s) for c, s in genome.items()}
    rows = read_sites(sites, sizes)
    chroms = [c for c in genome if sizes[c] >= length]
    if len(chroms) < 2:
        raise input_error(
            fasta,
            None,
            f"fewer than 2 chromosomes of at least {length} bp",
            "simulate at least 2 chromosomes longer than the window",
        )
    test_chrom = test_chrom or chroms[-1]
    train_chroms = [c for c in chroms if c != test_chrom]
    tfs = sorted({s[3] for s in rows})
    labeller = Labeller(rows, tfs, length)
    onehot = {c: one_hot(genome[c]) for c in chroms}
    expected = expected_coverage(rows, {c: sizes[c] for c in chroms})
    observed = {c: rng.poisson(expected[c]).astype(np.float32) for c in chroms}
    anchors = [s for s in rows if s[0] in train_chroms and s[2] - s[1] <= length]
    if not anchors:
        raise input_error(
            sites,
            None,
            "no sites on the training chromosomes",
            "plant sites on more than one chromosome",
        )
    weights = np.array([sizes[c] - length + 1 for c in train_chroms], dtype=np.float64)

    def draw(n):
        """n training windows -> x (n, 4, L) float32, observed reads (n, L) float32."""
        xs, ys = [], []
        n_site = n // 2
        picks = rng.integers(len(anchors), size=n_site)
        chrom_idx = rng.choice(len(train_chroms), size=n - n_site, p=weights / weights.sum())
        uniform = rng.random(n - n_site)
        jitter = rng.random(n_site)
        flips = rng.random(n) < 0.5
        todo = []
        for k, p in enumerate(picks):
            c, s, e, _ = anchors[p]
            lo, hi = max(0, e - length), min(s, sizes[c] - length)
            todo.append((c, lo + int(jitter[k] * (hi - lo + 1))))
        for k, ci in enumerate(chrom_idx):
            c = train_chroms[ci]
            todo.append((c, int(uniform[k] * (sizes[c] - length + 1))))
        for k, (c, s) in enumerate(todo):
            x, y = onehot[c][:, s : s + length], observed[c][s : s + length]
            xs.append(x[::-1, ::-1] if flips[k] else x)
            ys.append(y[::-1] if flips[k] else y)
        return torch.from_numpy(np.stack(xs).copy()), torch.from_numpy(np.stack(ys).copy())

    tiled = np.concatenate(
        [observed[c][: sizes[c] // length * length].reshape(-1, length) for c in train_chroms]
    )
    if counts_weight is None:
        counts_weight = float(np.median(tiled.sum(1))) / 10
    kwargs = {
        "length": length,
        "filters": filters,
        "layers": layers,
        "conv_kernel": 21,
        "profile_kernel": 25,
    }
    model = build_bpnet(**kwargs)
    with torch.no_grad():  # the counts head starts at the mean log reads of the training tiles
        model.counts.weight.zero_()
        model.counts.bias.fill_(float(np.log1p(tiled.sum(1)).mean()))
    head = list(model.counts.parameters())
    trunk = [p for p in model.parameters() if all(p is not q for q in head)]
    optimizer = torch.optim.Adam(
        [{"params": trunk}, {"params": head, "lr": COUNTS_HEAD_LR * lr}], lr=lr
    )
    steps = max(1, windows_per_epoch // batch_size)
    # cosine decay of the learning rate to 0 over all steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * k / (epochs * steps)))
    )
    losses, profile_losses, counts_losses = [], [], []
    log.info(
        "training on %s (%d site anchors), testing on %s; TFs %s; counts weight %.2f",
        ",".join(train_chroms),
        len(anchors),
        test_chrom,
        tfs,
        counts_weight,
    )
    with deterministic():  # the process's setting is restored, an error or not
        for epoch in range(epochs):
            model.train()
            sums = np.zeros(2)
            bar = tqdm(
                range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False
            )
            for _ in bar:
                x, y = draw(batch_size)
                optimizer.zero_grad()
                profile_loss, counts_loss = bpnet_loss(model(x), y)
                (profile_loss + counts_weight * counts_loss).backward()
                optimizer.step()
                schedule.step()
                sums += [float(profile_loss.detach()), float(counts_loss.detach())]
                bar.set_postfix(profile=f"{sums[0] / (bar.n + 1):.1f}")
            profile_losses.append(float(sums[0] / steps))
            counts_losses.append(float(sums[1] / steps))
            losses.append(profile_losses[-1] + counts_weight * counts_losses[-1])
            log.info(
                "epoch %d/%d: training loss %.2f (profile %.2f, counts %.4f)",
                epoch + 1,
                epochs,
                losses[-1],
                profile_losses[-1],
                counts_losses[-1],
            )

    model.eval()
    starts = np.arange(0, sizes[test_chrom] - length + 1, length // 2)
    y_test = labeller.labels(test_chrom, starts)
    x_test = torch.from_numpy(np.stack([onehot[test_chrom][:, s : s + length] for s in starts]))
    heldout = heldout_metrics(
        model,
        x_test,
        np.stack([observed[test_chrom][s : s + length] for s in starts]),
        np.stack([expected[test_chrom][s : s + length] for s in starts]),
        y_test,
        ["any"] + tfs,
    )
    log.info("held-out on %s: %s", test_chrom, heldout)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    program = export(model, length)
    with torch.no_grad():
        got = program.module()(x_test[:8])
        want = model(x_test[:8])
    for head, g, w in zip(HEADS, got, want):
        if not torch.equal(g, w):
            log.warning(
                "exported program's %s head differs from the module by %.3g",
                head,
                float((g - w).abs().max()),
            )
    _save_as(out / "model.pt2", lambda p: torch.export.save(program, p))
    _save_as(out / "model_state.pt", lambda p: torch.save(model.state_dict(), p))
    meta = {
        "builder": BUILDER,
        "kwargs": kwargs,
        "length": length,
        "alphabet": ALPHABET,
        "heads": HEADS,
        "program": "model.pt2",
        "state_dict": "model_state.pt",
    }
    _write_json(out / "model.json", meta)
    summary = {
        "seed": seed,
        "heldout": heldout,
        "losses": losses,
        "profile_losses": profile_losses,
        "counts_losses": counts_losses,
        "counts_weight": counts_weight,
        "seconds": round(time.perf_counter() - t0, 1),
        "epochs": epochs,
        "threads": threads,
        "batch_size": batch_size,
        "windows_per_epoch": steps * batch_size,
        "lr": lr,
        "length": length,
        "train_chroms": train_chroms,
        "test_chrom": test_chrom,
        "n_test_windows": len(starts),
        "test_positives": dict(zip(["any"] + tfs, y_test.sum(0).astype(int).tolist())),
        "torch": torch.__version__,
    }
    _write_json(out / "training.json", summary)
    return summary


def bpnet_loss(outputs, reads):
    """BPNet's two losses, each a batch mean -> (profile loss, counts loss) scalar tensors.

    ``outputs``: (profile logits (N, 1, L), log counts (N, 1)); ``reads`` (N, L). The profile loss is the
    multinomial negative log-likelihood ``-sum_j reads_j log softmax(logits)_j`` per window (the terms without
    the model left out), the counts loss the squared error against ``log(1 + sum_j reads_j)``.
    """
    profile, counts = outputs
    profile_loss = -(reads * torch.log_softmax(profile[:, 0], -1)).sum(-1).mean()
    counts_loss = torch.nn.functional.mse_loss(counts[:, 0], torch.log1p(reads.sum(-1)))
    return profile_loss, counts_loss


def heldout_metrics(model, x, reads, expected, labels, names, batch=256):
    """Profile and counts metrics of ``model`` on held-out windows -> dict (keys in the module docstring).

    ``x`` (N, 4, L); ``reads``, ``expected`` (N, L) observed reads and expected coverage; ``labels`` (N, T)
    windows holding a site (column 0 any site, then one per TF, named ``names``).
    """
    from scipy.stats import pearsonr, spearmanr

    with torch.no_grad():
        parts = [model(x[i : i + batch]) for i in range(0, len(x), batch)]
    logits = torch.cat([p[0][:, 0] for p in parts]).double()
    counts = torch.cat([p[1][:, 0] for p in parts]).numpy().astype(np.float64)
    prob = torch.softmax(logits, -1).numpy()
    log_prob = torch.log_softmax(logits, -1).numpy()

    def profile_r(target, rows):
        r = [pearsonr(prob[i], target[i])[0] for i in np.flatnonzero(rows)]
        return round(float(np.mean(r)), 4) if r else None

    totals = np.log1p(reads.sum(1))
    return {
        "profile_pearson": profile_r(reads, labels[:, 0]),
        "profile_pearson_expected": profile_r(expected, labels[:, 0]),
        "profile_pearson_per_tf": {n: profile_r(reads, labels[:, t]) for t, n in enumerate(names)},
        "profile_nll_per_read": round(float(-(reads * log_prob).sum() / reads.sum()), 4),
        "counts_pearson": round(float(pearsonr(counts, totals)[0]), 4),
        "counts_spearman": round(float(spearmanr(counts, totals)[0]), 4),
        "n_windows_with_site": int(labels[:, 0].sum()),
    }


def export(model, length):
    """Export ``model`` (eval mode) with a dynamic batch dimension -> ``torch.export.ExportedProgram``."""
    model.eval()
    example = torch.zeros(2, 4, length)
    batch = torch.export.Dim("batch")
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))


def _save_as(path, save):
    """Atomically write ``path`` with ``save(tmp)`` where tmp has the same file name (in a temporary
    directory beside it): torch names the archive's root folder after the file, so the bytes depend on it."""
    path = Path(path)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save(tmpdir / path.name)
        os.replace(tmpdir / path.name, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _write_json(path, obj):
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=1)
        handle.write("\n")
