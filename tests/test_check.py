"""``plrp check`` and the faults it guards against: every input validated before attribution (a broken
known-sites BED stops a real workflow run before any attribute job), BED3 known sites refused by the reader,
and a GPU out-of-memory shard retried with half the batch (fault injected at the allocation)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import BIN, snakemake

from lrp.core.errors import PlrpError

L = 200
KWARGS = {"n_tasks": 2, "length": L, "filters": 4}


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A genome of 2 x 1400 bp, a .pt2 model, a MEME database of three motifs and named known sites."""
    import torch

    from lrp.demo.model import build_model
    from lrp.demo.train import export
    from lrp.motifs.database import write_meme

    d = tmp_path_factory.mktemp("check_inputs")
    rng = np.random.default_rng(3)
    with open(d / "g.fa", "w") as handle:
        for name in ("chr1", "chr2"):
            seq = "".join(rng.choice(list("ACGT"), 1400))
            handle.write(f">{name}\n" + "".join(seq[i : i + 70] + "\n" for i in range(0, 1400, 70)))
    torch.export.save(export(build_model(**KWARGS, seed=0).eval(), L), d / "model.pt2")
    write_meme(d / "db.meme", {f"TF{i}": rng.dirichlet(np.ones(4), 8).T for i in range(3)})
    (d / "sites.bed").write_text("chr1\t100\t110\tTF0\t0\t+\nchr2\t300\t312\tTF1\t0\t-\n")
    (d / "sites3.bed").write_text("chr1\t100\t110\nchr2\t300\t312\n")
    rows = [(c, s, s + L) for c in ("chr1", "chr2") for s in range(0, 1400 - L + 1, 100)]
    (d / "regions.bed").write_text(
        "".join(f"{c}\t{s}\t{e}\t{c}:{s}-{e}\t0\t.\n" for c, s, e in rows)
    )
    return d


def _plrp(argv, env=None):
    import os

    return subprocess.run(
        [str(BIN / "plrp"), *map(str, argv)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=None if env is None else {**os.environ, **env},
    )


def _check(d, out, **flags):
    argv = ["check", "--fasta", d / "g.fa", "--motif-db", d / "db.meme", "--model", d / "model.pt2"]
    argv += ["--length", L, "--target", '{"index": 0}', "--out", out]
    for key, value in flags.items():
        argv += [f"--{key.replace('_', '-')}", value]
    return _plrp(argv)


def test_check_reports_what_it_read(d, tmp_path):
    result = _check(d, tmp_path / "check.json", known_sites=d / "sites.bed", bed=d / "regions.bed")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["known_sites"] == {"TF0": 1, "TF1": 1}
    assert report["motif_database"] == 3 and report["chromosomes"] == 2
    assert report["regions"] == 26 and report["model_outputs"] == [[2, 2]]


def test_check_reports_every_problem_one_line_each(d, tmp_path):
    """A BED3 of sites and a wrong length: both named, the first as the error; no report written."""
    result = _check(d, tmp_path / "check.json", known_sites=d / "sites3.bed")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [
        (
            f"plrp check: error: {d / 'sites3.bed'}: line 1: no name in column 4: known sites need the "
            "TF name of each site. Fix: write BED6 (chrom, start, end, TF name, score, strand), e.g. "
            "'chr1\\t100\\t110\\tCTCF\\t0\\t+'"
        )
    ]
    assert not (tmp_path / "check.json").exists() and list(tmp_path.iterdir()) == []
    result = _check(d, tmp_path / "check.json", known_sites=d / "sites3.bed", length=300)
    also = [line for line in result.stderr.splitlines() if "check: also:" in line]
    assert len(also) == 1 and "input shape mismatch" in also[0] and "set length: 200" in also[0]


def test_bed3_known_sites_refused_by_the_reader(d):
    """A BED3 of known sites used to score per-TF metrics keyed by coordinates: the reader refuses it."""
    from lrp.genomics.regions import read_bed

    with pytest.raises(PlrpError, match=r"sites3.bed: line 1: no name in column 4"):
        read_bed(d / "sites3.bed", None, "known sites", require_name=True)
    assert len(read_bed(d / "sites3.bed", None, "regions")) == 2  # regions need no name


def test_header_message_only_for_a_header(tmp_path):
    from lrp.genomics.regions import read_bed

    (tmp_path / "h.bed").write_text("chrom\tchromStart\tchromEnd\nchr1\t0\t10\n")
    (tmp_path / "x.bed").write_text("chr1\t1e3\t2000\nchr1\t0\t10\n")
    with pytest.raises(PlrpError, match=r"line 1: .*Fix: remove the column-header line"):
        read_bed(tmp_path / "h.bed", None)
    with pytest.raises(PlrpError, match=r"line 1: .*Fix: use 0-based integer coordinates") as err:
        read_bed(tmp_path / "x.bed", None)
    assert "column-header" not in str(err.value)


def test_meme_width_zero(tmp_path):
    from lrp.motifs.database import read_meme

    (tmp_path / "w0.meme").write_text(
        "MEME version 4\n\nALPHABET= ACGT\n\nMOTIF M1 TF1\n"
        "letter-probability matrix: alength= 4 w= 0 nsites= 20 E= 0\n"
    )
    with pytest.raises(PlrpError) as err:
        read_meme(tmp_path / "w0.meme")
    assert "motif M1 (TF1): w= 0: a motif needs at least one position" in str(err.value)
    assert "expected 0" not in str(err.value)


# ------------------------------------------------------------------------------------- GPU out of memory
def _attribute(d, out, batch, env=None):
    argv = ["attribute", "--fasta", d / "g.fa", "--regions", d / "regions.bed", "--model"]
    argv += [d / "model.pt2", "--length", L, "--method", "plrp-lambda", "--target", '{"index": 0}']
    argv += ["--shard", 0, "--shard-size", 12, "--batch-size", batch, "--threads", 1, "--out", out]
    return _plrp(argv, env)


def _arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_out_of_memory_halves_the_batch_and_gives_the_bytes_of_that_batch(d, tmp_path):
    """PLRP_TEST_OOM=3: a batch of more than 3 windows raises torch.cuda.OutOfMemoryError at allocation;
    batch 12 -> 6 -> 3 fits, and the shard is the same as a run started at batch 3."""
    oom = _attribute(d, tmp_path / "oom.npz", 12, {"PLRP_TEST_OOM": "3"})
    assert oom.returncode == 0, oom.stderr
    assert (
        "out of memory at batch size 12; explaining the shard again at batch size 6" in oom.stderr
    )
    assert "out of memory at batch size 6; explaining the shard again at batch size 3" in oom.stderr
    plain = _attribute(d, tmp_path / "b3.npz", 3)
    assert plain.returncode == 0, plain.stderr
    a, b = _arrays(tmp_path / "oom.npz"), _arrays(tmp_path / "b3.npz")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b3.npz", "oom.npz"]


def test_out_of_memory_at_batch_one_is_one_line(d, tmp_path):
    from lrp.attribution.memory import with_smaller_batches

    tried = []

    def run(batch_size):
        import torch

        tried.append(batch_size)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(
        PlrpError, match=r"shard.npz: the GPU runs out of memory even with one window"
    ):
        with_smaller_batches(run, 5, where="shard.npz")
    assert tried == [5, 2, 1]


# ------------------------------------------------------------------------------------------ the workflow
def test_broken_known_sites_stop_the_run_before_any_attribute_job(d, tmp_path):
    config = {
        "seed": 0,
        "genomes": {
            "g": {
                "fasta": str(d / "g.fa"),
                "known_sites": str(d / "sites3.bed"),
                "regions": {"tile": {"step": 100}},
            }
        },
        "models": {"m": {"path": str(d / "model.pt2"), "length": L, "target": {"index": 0}}},
        "methods": {"lrp": {"method": "lrp"}},
        "motif_database": {"meme": str(d / "db.meme")},
        "attribution": {"shard_size": 6, "batch_size": 4, "device": "cpu", "threads": 1},
    }
    result = snakemake(tmp_path, "--cores", "1", "results/g/m/lrp/metrics.json", config=config)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule check" in text, text[-3000:]
    assert "rule attribute" not in text and "(Rule: attribute)" not in text
    assert not (tmp_path / "results/g/m/lrp").exists()
    assert not (tmp_path / "logs/g/m/lrp").exists()
    log = (tmp_path / "logs/g/m/check.log").read_text()
    assert "sites3.bed: line 1: no name in column 4" in log
    assert not (tmp_path / "results/g/m/check.json").exists()
    hidden = [p for p in Path(tmp_path / "results").rglob(".*")]
    assert hidden == []
