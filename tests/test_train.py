"""Demo training on a small simulated genome: labels, the BPNet loss, held-out profile and counts metrics,
saved files, reproducibility."""

import hashlib
import json

import numpy as np
import pytest
import torch

from lrp.demo.simulate import simulate_to
from lrp.demo.spec import TARGETS as HEADS
from lrp.demo.train import Labeller, bpnet_loss, one_hot, read_fasta, train
from lrp.engine.model_io import check_model, load_model, model_outputs
from lrp.steps.cli import main

LENGTH = 500


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    # the previous demo's TFs: an easy mix (NRF1 stands out) that two short epochs already learn
    simulate_to(
        out,
        seed=5,
        chrom_lengths=(60_000, 60_000),
        density=1.0,
        tfs=("CTCF", "NRF1", "SPI1"),
    )
    return out


@pytest.fixture(scope="module")
def trained(genome, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    summary = train(
        genome / "genome.fa",
        genome / "known_sites.bed",
        out,
        seed=1,
        length=LENGTH,
        epochs=4,
        windows_per_epoch=2048,
        filters=16,
        layers=4,
        threads=2,
        progress=False,
    )
    return out, summary


def test_labeller_contains_rule():
    sites = [
        ("c", 100, 110, "A"),
        ("c", 300, 320, "A"),
        ("c", 305, 312, "B"),
        ("d", 0, 5, "B"),
    ]
    lab = Labeller(sites, ["A", "B"], 100)
    y = lab.labels("c", [0, 10, 11, 101, 221, 250, 400])
    # window [s, s+100) holds a site when start >= s and end <= s + 100
    np.testing.assert_array_equal(y[:, 1], [0, 1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(y[:, 2], [0, 0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(y[:, 0], y[:, 1:].max(1))
    assert lab.labels("d", [0])[0].tolist() == [1, 0, 1]


def test_one_hot():
    x = one_hot("ACGTN")
    assert x.shape == (4, 5) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :4], np.eye(4))
    assert x[:, 4].sum() == 0


def test_bpnet_loss_is_least_at_the_observed_profile_and_counts():
    rng = np.random.default_rng(0)
    reads = torch.from_numpy(rng.poisson(2.0, (3, 50)).astype(np.float32))
    exact = (torch.log(reads + 1e-6)[:, None], torch.log1p(reads.sum(-1, keepdim=True)))
    profile, counts = bpnet_loss(exact, reads)
    assert float(counts) < 1e-10
    # the multinomial NLL: sum_j reads_j * -log(p_j), per window, averaged
    p = reads / reads.sum(-1, keepdim=True)
    want = -(reads * torch.log(p.clamp_min(1e-30))).sum(-1).mean()
    assert float(profile) == pytest.approx(float(want), rel=1e-4)
    for _ in range(5):
        noise = torch.from_numpy(rng.normal(0, 0.5, (3, 1, 50)).astype(np.float32))
        worse = bpnet_loss((exact[0] + noise, exact[1] + 0.3), reads)
        assert float(worse[0]) > float(profile) and float(worse[1]) > float(counts)


def test_training_outputs(trained, genome):
    out, summary = trained
    assert summary["test_chrom"] == "chr2" and summary["train_chroms"] == ["chr1"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["builder"] == "lrp.demo.model:build_bpnet" and meta["alphabet"] == "ACGT"
    assert meta["length"] == LENGTH and meta["heads"] == HEADS
    assert meta["kwargs"]["filters"] == 16 and meta["kwargs"]["layers"] == 4
    saved = json.loads((out / "training.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert len(saved["losses"]) == len(saved["profile_losses"]) == 4
    assert saved["seed"] == 1 and saved["seconds"] > 0 and saved["counts_weight"] > 0
    held = saved["heldout"]
    tfs = sorted(["CTCF", "Nrf1", "Spi1", "TAL1::TCF3", "GATA1"])
    assert set(held["profile_pearson_per_tf"]) == {"any", *tfs}
    assert held["n_windows_with_site"] == summary["test_positives"]["any"] > 10
    # after a short training the predicted profile follows the assay at the sites (about 0.5 here), and the
    # counts head follows the windows' reads
    assert held["profile_pearson_expected"] > 0.3, held
    assert held["profile_pearson"] < held["profile_pearson_expected"]  # Poisson noise in the reads
    assert held["counts_pearson"] > 0.15, held  # about 0.3 here; an untrained head gives about 0
    assert held["profile_nll_per_read"] > 0
    # training runs with deterministic algorithms and hands the process back as it found it
    assert not torch.are_deterministic_algorithms_enabled()


def test_program_reproduces_state_dict_model(trained, genome):
    out, _ = trained
    meta = json.loads((out / "model.json").read_text())
    program = load_model(out / "model.pt2")
    net = load_model(out / "model_state.pt", builder=meta["builder"], builder_kwargs=meta["kwargs"])
    assert check_model(program, LENGTH) == [(2, 1, LENGTH), (2, 1)]
    seq = read_fasta(genome / "genome.fa")["chr2"]
    x = torch.from_numpy(np.stack([one_hot(seq[s : s + LENGTH]) for s in range(0, 20_000, 997)]))
    with torch.no_grad():
        a, b = model_outputs(program, x), model_outputs(net, x)
    assert isinstance(a, tuple) and len(a) == len(b) == 2
    assert a[0].shape == (len(x), 1, LENGTH) and a[1].shape == (len(x), 1)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    state = torch.load(out / "model_state.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_same_seed_same_bytes(genome, tmp_path):
    options = {"length": LENGTH, "epochs": 1, "windows_per_epoch": 128, "filters": 8, "layers": 2}

    def digests(name):
        return {
            f: hashlib.md5((tmp_path / name / f).read_bytes()).hexdigest()
            for f in ("model.pt2", "model_state.pt", "model.json")
        }

    def run(name, seed):
        train(
            genome / "genome.fa",
            genome / "known_sites.bed",
            tmp_path / name,
            seed=seed,
            progress=False,
            **options,
        )
        return digests(name)

    a, c = run("a", 3), run("c", 4)
    # the command line trains the same model from the same options
    argv = [
        "train",
        "--fasta",
        str(genome / "genome.fa"),
        "--sites",
        str(genome / "known_sites.bed"),
    ]
    argv += ["--out-dir", str(tmp_path / "b"), "--seed", "3"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    assert main(argv) == 0
    assert a == digests("b")
    assert a["model_state.pt"] != c["model_state.pt"]


def test_cli_errors(genome, tmp_path, capsys):
    argv = [
        "train",
        "--fasta",
        str(tmp_path / "none.fa"),
        "--sites",
        str(genome / "known_sites.bed"),
        "--out-dir",
        str(tmp_path / "m"),
    ]
    assert main(argv) == 1
    assert "none.fa: FASTA file not found" in capsys.readouterr().err
    bed = tmp_path / "bad.bed"
    bed.write_text("chrX\t1\t10\tCTCF\t0\t+\n")
    argv = [
        "train",
        "--fasta",
        str(genome / "genome.fa"),
        "--sites",
        str(bed),
        "--out-dir",
        str(tmp_path / "m"),
    ]
    assert main(argv) == 1
    assert "chromosome chrX is not in the FASTA" in capsys.readouterr().err
    assert not (tmp_path / "m" / "model.pt2").exists()
