"""The relevance store: one owner of the on-disk format, read by rows; the steps that walk every region
(call-motifs, motifs) hold memory that does not grow with the store.

The memory test builds a store of a few hundred MB of float32 relevance on a synthetic genome (one motif
planted in a tenth of the windows, the relevance on it, zero elsewhere) and runs the real ``plrp`` commands in a child process
whose peak RSS (``VmHWM``) must stay well below the store's size above the child's import baseline.
"""

import contextlib
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from lrp.genomics.store import (
    SMALL,
    RowFile,
    _npy_member,
    open_relevance,
    open_store,
)

L = 1000
N = 20_000  # 320 MB of relevance, as much hypothetical, 80 MB of one-hot
MOTIF = "TGACGTCATG"
HEADROOM_MB = 250  # allowed above the import baseline; the relevance alone is 320 MB


def _ohe(seq):
    return np.array([[b == c for b in seq] for c in "ACGT"], dtype=np.int8)


def _build(folder, n=N):
    """A gathered store (the .npy files written by rows, relevance.npz streamed from them as plrp gather
    does), its region table, FASTA and a one-motif MEME database."""
    from lrp.genomics.regions import write_regions
    from lrp.motifs.database import write_meme

    rng = np.random.default_rng(0)
    genome = rng.choice(list("ACGT"), size=n * L)
    planted = np.arange(0, n, 10)
    for r in planted:
        genome[r * L + 500 : r * L + 500 + len(MOTIF)] = list(MOTIF)
    genome = "".join(genome)
    (folder / "g.fa").write_text(
        ">chr1\n" + "\n".join(genome[i : i + 80] for i in range(0, len(genome), 80)) + "\n"
    )
    import pandas as pd

    regions = pd.DataFrame(
        {
            "chrom": "chr1",
            "start": np.arange(n) * L,
            "end": np.arange(1, n + 1) * L,
            "name": [f"r{i}" for i in range(n)],
        }
    )
    write_regions(regions, folder / "regions.bed")
    pfm = _ohe(MOTIF).astype(np.float64) * 0.97 + 0.01
    write_meme(folder / "db.meme", {"TESTTF": pfm / pfm.sum(0)}, {"TESTTF": "MA0000.1"})
    small = {
        "index": np.arange(n, dtype=np.int64),
        "target": np.zeros(n, np.float32),
        "layer_gini": np.zeros((n, 0), np.float32),
        "layer_names": np.array([], dtype=str),
    }
    with contextlib.ExitStack() as stack:
        files = {
            k: RowFile(stack.enter_context(open(folder / f"{k}.npy", "w+b")), n, (4, L), dtype)
            for k, dtype in {
                "relevance": np.float32,
                "hypothetical": np.float32,
                "ohe": np.int8,
            }.items()
        }
        step = 500
        for lo in range(0, n, step):
            rows = np.arange(lo, min(lo + step, n))
            seq = genome[lo * L : (lo + len(rows)) * L]
            ohe = np.stack([_ohe(seq[i * L : (i + 1) * L]) for i in range(len(rows))])
            hyp = rng.normal(0, 0.01, size=ohe.shape).astype(np.float32)
            site = np.zeros(ohe.shape, bool)
            site[np.isin(rows, planted), :, 500 : 500 + len(MOTIF)] = True
            hyp[site] += 2.0
            files["ohe"].write_rows(rows, ohe)
            files["hypothetical"].write_rows(rows, hyp)
            files["relevance"].write_rows(rows, hyp * ohe * site)  # sparse, as PLRP's
        # relevance.npz as plrp gather writes it: the small arrays, uncompressed (the big ones are .npy)
        with zipfile.ZipFile(
            folder / "relevance.npz", "w", zipfile.ZIP_STORED, allowZip64=True
        ) as zf:
            for key, value in small.items():
                _npy_member(zf, f"{key}.npy", value)
    return folder


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("store"))


CHILD = textwrap.dedent(
    """
    import sys
    import lrp.steps.{module}, tangermeme.seqlet, memelite, pybedtools  # the step's imports: the baseline
    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024
    base = hwm()
    from lrp.steps.cli import main
    rc = main(sys.argv[1:])
    print(base, hwm(), rc)
    """
)


def _peak(argv, module):
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module), *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    base, peak, rc = map(int, out.stdout.split()[-3:])
    assert rc == 0, out.stderr[-2000:]
    return base, peak


def test_the_store_reads_rows_and_checks_shapes(tmp_path):
    from lrp.core.errors import PlrpError

    _build(tmp_path, n=30)
    with np.load(tmp_path / "relevance.npz") as npz:
        assert "ohe" not in npz.files  # the (N, 4, L) arrays are stored once, as .npy
    store = open_store(tmp_path / "relevance.npz", keys=("relevance", "ohe"))
    assert store.n == 30 and store.length == L and set(store.small) <= set(SMALL)
    whole = np.load(tmp_path / "relevance.npy")
    np.testing.assert_array_equal(store.relevance[3:7], whole[3:7])
    assert [hi - lo for lo, hi in store.chunks(chunk_bytes=16 * L * 8)] == [8, 8, 8, 6]
    assert open_relevance(tmp_path / "relevance.npz").shape == (30, 4, L)
    with pytest.raises(PlrpError, match="31 regions"):
        open_relevance(tmp_path / "relevance.npz", 31, "regions.bed")
    (tmp_path / "ohe.npy").write_bytes((tmp_path / "ohe.npy").read_bytes()[:200])
    with pytest.raises(PlrpError, match="ohe"):
        open_store(tmp_path / "relevance.npz", keys=("relevance", "ohe"))


def test_call_motifs_and_motifs_hold_bounded_memory(big):
    store_mb = (big / "relevance.npy").stat().st_size >> 20
    base, peak = _peak(
        [
            "call-motifs",
            "--relevance",
            str(big / "relevance.npz"),
            "--regions",
            str(big / "regions.bed"),
            "--motif-db",
            str(big / "db.meme"),
            "--fasta",
            str(big / "g.fa"),
            "--out-bed",
            str(big / "calls.bed"),
            "--out-tsv",
            str(big / "calls.tsv"),
            "--threads",
            "1",
            "--fdr",
            "1",
        ],
        "call_motifs",
    )
    calls = (big / "calls.tsv").read_text().splitlines()
    assert sum("TESTTF" in line for line in calls) >= N // 20  # the planted sites are found
    assert peak - base < HEADROOM_MB < store_mb, (base, peak, store_mb)
    base, peak = _peak(
        [
            "motifs",
            "--relevance",
            str(big / "relevance.npz"),
            "--calls",
            str(big / "calls.tsv"),
            "--motif-db",
            str(big / "db.meme"),
            "--out-meme",
            str(big / "m.meme"),
            "--out-tsv",
            str(big / "m.tsv"),
            "--out-npz",
            str(big / "m.npz"),
            "--threads",
            "1",
        ],
        "motifs",
    )
    assert "TESTTF" in (big / "m.tsv").read_text()
    assert peak - base < HEADROOM_MB, (base, peak, store_mb)


def test_evaluate_holds_bounded_memory(big):
    (big / "sites.bed").write_text(
        "".join(f"chr1\t{r * L + 500}\t{r * L + 510}\tTESTTF\t0\t+\n" for r in range(0, N, 10))
    )
    base, peak = _peak(
        [
            "evaluate",
            "--relevance",
            str(big / "relevance.npz"),
            "--regions",
            str(big / "regions.bed"),
            "--known-sites",
            str(big / "sites.bed"),
            "--method",
            "lrp",
            "--out-json",
            str(big / "e.json"),
            "--out-tsv",
            str(big / "e.tsv"),
        ],
        "evaluate",
    )
    assert peak - base < HEADROOM_MB, (base, peak)
