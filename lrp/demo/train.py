"""Train the demo CNN on the simulated genome; report held-out AUROC; save it as .pt2 and a state dict.

Windows of ``length`` bp are labelled from the planted sites (``known_sites.bed``): task t >= 1 is positive when
the window fully contains a site of TF t (TFs sorted by name), task 0 ("any") when it contains any site. The
last chromosome is held out: it is tiled with stride ``length // 2`` for the test AUROC. Each epoch draws fresh
training windows from the other chromosomes, half of them placed to contain a random site, half uniform,
each reverse-complemented with probability 1/2.
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

log = logging.getLogger("plrp")

ALPHABET = "ACGT"
BUILDER = "lrp.demo.model:build_model"
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
    epochs=20,
    threads=2,
    batch_size=64,
    windows_per_epoch=3200,
    lr=2e-2,
    filters=32,
    pool="max",
    test_chrom=None,
    progress=True,
):
    """Train the demo model and write ``model.pt2``, ``model_state.pt``, ``model.json``,
    ``training.json`` into ``out_dir``; returns the training summary (dict)."""
    from lrp.demo.model import build_model

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
    task_names = ["any"] + tfs
    labeller = Labeller(rows, tfs, length)
    onehot = {c: one_hot(genome[c]) for c in chroms}
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
        """n training windows -> x (n, 4, L) float32, y (n, T) float32."""
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
            x = onehot[c][:, s : s + length]
            xs.append(x[::-1, ::-1] if flips[k] else x)
            ys.append(labeller.labels(c, [s])[0])
        return torch.from_numpy(np.stack(xs).copy()), torch.from_numpy(np.stack(ys))

    kwargs = {
        "n_tasks": len(task_names),
        "length": length,
        "filters": filters,
        "kernel_size": 15,
        "pool_size": 4,
        "pool": pool,
        "task_names": task_names,
    }
    model = build_model(**kwargs)
    tiles = np.concatenate(
        [labeller.labels(c, np.arange(0, sizes[c] - length + 1, length)) for c in train_chroms]
    )
    frac = tiles.mean(0)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, windows_per_epoch // batch_size)
    # cosine decay of the learning rate to 0 over all steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * k / (epochs * steps)))
    )
    losses = []
    log.info(
        "training on %s (%d site anchors), testing on %s; tasks %s; tiled positive fraction %s",
        ",".join(train_chroms),
        len(anchors),
        test_chrom,
        task_names,
        np.round(frac, 3).tolist(),
    )
    with deterministic():  # the process's setting is restored, an error or not
        for epoch in range(epochs):
            model.train()
            total = 0.0
            bar = tqdm(
                range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False
            )
            for _ in bar:
                x, y = draw(batch_size)
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach())
                bar.set_postfix(loss=f"{total / (bar.n + 1):.4f}")
            losses.append(total / steps)
            log.info("epoch %d/%d: training loss %.4f", epoch + 1, epochs, losses[-1])

    model.eval()
    starts = np.arange(0, sizes[test_chrom] - length + 1, length // 2)
    y_test = labeller.labels(test_chrom, starts)
    with torch.no_grad():
        x_test = torch.from_numpy(np.stack([onehot[test_chrom][:, s : s + length] for s in starts]))
        scores = torch.cat([model(x_test[i : i + 256]) for i in range(0, len(x_test), 256)]).numpy()
    aurocs = {name: auroc(y_test[:, t], scores[:, t]) for t, name in enumerate(task_names)}
    aurocs = {k: (None if math.isnan(v) else round(v, 4)) for k, v in aurocs.items()}
    log.info(
        "held-out AUROC on %s: %s", test_chrom, ", ".join(f"{k} {v}" for k, v in aurocs.items())
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    program = export(model, length)
    with torch.no_grad():
        got = program.module()(x_test[:8])
        want = model(x_test[:8])
    if not torch.equal(got, want):
        log.warning(
            "exported program differs from the module by %.3g", float((got - want).abs().max())
        )
    _save_as(out / "model.pt2", lambda p: torch.export.save(program, p))
    _save_as(out / "model_state.pt", lambda p: torch.save(model.state_dict(), p))
    meta = {
        "builder": BUILDER,
        "kwargs": kwargs,
        "length": length,
        "alphabet": ALPHABET,
        "task_names": task_names,
        "target": 0,
        "program": "model.pt2",
        "state_dict": "model_state.pt",
    }
    _write_json(out / "model.json", meta)
    summary = {
        "seed": seed,
        "auroc": aurocs,
        "losses": losses,
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
        "test_positives": dict(zip(task_names, y_test.sum(0).astype(int).tolist())),
        "torch": torch.__version__,
    }
    _write_json(out / "training.json", summary)
    return summary


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
