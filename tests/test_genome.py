"""lrp.genomics.genome on real FASTA files written in tmp_path."""

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrp.core.errors import PlrpError
from lrp.genomics.genome import (
    chrom_sizes,
    decode,
    fetch_one_hot,
    n_runs,
    one_hot_encode,
    open_fasta,
    write_chrom_sizes,
)


def write_fasta(path, records, width=60):
    with open(path, "w") as handle:
        for name, seq in records.items():
            handle.write(f">{name}\n")
            handle.writelines(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
    return str(path)


@pytest.fixture
def genome(tmp_path):
    rng = np.random.default_rng(0)
    records = {
        "chr2": "".join(rng.choice(list("ACGT"), 1000)),
        "chr10": "ACGTacgtNNNN" + "".join(rng.choice(list("ACGT"), 488)),
        "chrM": "ACGTRYACGT",
    }
    return write_fasta(tmp_path / "g.fa", records), records


def test_chrom_sizes_in_fasta_order(genome, tmp_path):
    path, records = genome
    assert chrom_sizes(path) == {name: len(seq) for name, seq in records.items()}
    assert list(chrom_sizes(path)) == ["chr2", "chr10", "chrM"]
    write_chrom_sizes(chrom_sizes(path), tmp_path / "chrom.sizes")
    assert (tmp_path / "chrom.sizes").read_text() == "chr2\t1000\nchr10\t500\nchrM\t10\n"


def test_one_hot_known_sequence():
    x = one_hot_encode("ACGTN")
    expected = np.array(
        [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]], np.float32
    )
    assert x.dtype == np.float32 and np.array_equal(x, expected)
    assert np.array_equal(one_hot_encode("acgtn"), expected)
    assert decode(x) == "ACGTN"
    with pytest.raises(PlrpError, match="invalid base 'X'"):
        one_hot_encode("ACXT")


def test_fetch_matches_fasta_and_uppercases(genome):
    path, records = genome
    fasta = open_fasta(path)
    regions = pd.DataFrame({"chrom": ["chr2", "chr10", "chr2"], "start": [0, 0, 990]})
    regions["end"] = regions["start"] + 10
    x = fetch_one_hot(fasta, regions, length=10)
    assert x.shape == (3, 4, 10) and x.dtype == np.float32
    assert decode(x[0]) == records["chr2"][:10]
    assert decode(x[1]) == "ACGTACGTNN"  # lowercase upper-cased, N -> all-zero column
    assert x[1][:, 8:].sum() == 0
    assert decode(x[2]) == records["chr2"][990:]


def test_iupac_is_n_with_one_warning(genome):
    path, _ = genome
    regions = [("chrM", 0, 10), ("chrM", 0, 10)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = fetch_one_hot(path, regions)
    assert len(caught) == 1
    assert "4 IUPAC" in str(caught[0].message) and "chrM:0-10" in str(caught[0].message)
    assert decode(x[0]) == "ACGTNNACGT"


def test_invalid_letter_names_file_chrom_position(tmp_path):
    path = write_fasta(tmp_path / "bad.fa", {"c1": "ACGTACGT", "c2": "ACGT-ACG"})
    with pytest.raises(PlrpError) as err:
        fetch_one_hot(path, [("c1", 0, 8), ("c2", 0, 8)])
    msg = str(err.value)
    assert "bad.fa" in msg and "c2:4" in msg and "'-'" in msg and "Fix:" in msg


def test_past_contig_end_and_unknown_contig(genome):
    path, _ = genome
    with pytest.raises(PlrpError, match=r"chrM:5-15.*outside the contig"):
        fetch_one_hot(path, [("chrM", 5, 15)])
    with pytest.raises(PlrpError, match=r"g\.fa: chr3: no such record"):
        fetch_one_hot(path, [("chr3", 0, 10)])
    with pytest.raises(PlrpError, match="length 5 != 10"):
        fetch_one_hot(path, [("chr2", 0, 5)], length=10)


@pytest.mark.parametrize(
    "content, problem",
    [
        ("", "FASTA file is empty"),
        ("ACGT\nACGT\n", "no FASTA records"),
        ("\n\n", "no FASTA records"),
        ("ACGT\n>a\nACGT\n", "sequence before the first"),
        (">a\nACGT\n>b x\nACGT\n>a y\nAC\n", "a: duplicate record name"),
        (">a\nACGT\nAC\nACGT\n", "a line 3: lines of unequal width.*seqkit seq -w 60"),
    ],
)
def test_bad_fasta(tmp_path, content, problem):
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(PlrpError, match=problem) as err:
        open_fasta(path)
    assert str(path) in str(err.value) and "Fix:" in str(err.value)


def _bgzip(src, dst):
    from Bio import bgzf

    with open(src, "rb") as plain, bgzf.BgzfWriter(str(dst), "wb") as packed:
        packed.write(plain.read())
    return str(dst)


def test_bgzip_fasta_reads_as_the_plain_one(genome, tmp_path):
    path, _ = genome
    packed = _bgzip(path, tmp_path / "g.fa.gz")
    regions = [("chr2", 10, 510), ("chr10", 0, 500), ("chrM", 0, 10)]
    assert chrom_sizes(packed) == chrom_sizes(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # chrM's IUPAC codes
        for region in regions:
            length = region[2] - region[1]
            want = fetch_one_hot(path, [region], length)
            assert np.array_equal(fetch_one_hot(packed, [region], length), want)
    assert os.path.exists(f"{packed}.fai") and os.path.exists(f"{packed}.gzi")
    assert n_runs(packed, "chr10")[0].tolist() == n_runs(path, "chr10")[0].tolist()


def test_plain_gzip_fasta_is_refused_with_the_bgzip_command(genome, tmp_path):
    import gzip

    path, _ = genome
    packed = tmp_path / "g.fa.gz"
    packed.write_bytes(gzip.compress(Path(path).read_bytes()))
    with pytest.raises(PlrpError, match=r"not block-gzipped .*bgzip -@2 .*g\.fa") as err:
        open_fasta(packed)
    assert str(err.value).startswith(str(packed))
    assert not os.path.exists(f"{packed}.fai")


def test_rewritten_bgzip_fasta_is_reindexed(genome, tmp_path):
    path, records = genome
    packed = _bgzip(path, tmp_path / "g.fa.gz")
    assert chrom_sizes(packed)["chr2"] == 1000
    time.sleep(0.01)
    _bgzip(write_fasta(tmp_path / "h.fa", {"chr2": records["chr2"][:600]}), packed)
    past = time.time() - 100
    for index in (f"{packed}.fai", f"{packed}.gzi"):
        os.utime(index, (past, past))
    assert chrom_sizes(packed) == {"chr2": 600}


def test_missing_fasta(tmp_path):
    with pytest.raises(PlrpError, match="not found"):
        open_fasta(tmp_path / "nope.fa")


def test_stale_fai(tmp_path):
    path = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 10, "b": "ACGT" * 5})
    open_fasta(path)
    # Rewrite the FASTA with other lengths and make the old .fai look newer.
    write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 12, "b": "ACGT" * 5})
    future = time.time() + 100
    os.utime(f"{path}.fai", (future, future))
    with pytest.raises(PlrpError, match=r"g\.fa\.fai: a: .*stale or bad \.fai"):
        open_fasta(path)
    # A .fai naming other records.
    (tmp_path / "g.fa.fai").write_text("x\t48\t3\t60\t61\n")
    os.utime(f"{path}.fai", (future, future))
    with pytest.raises(PlrpError, match="stale or bad"):
        open_fasta(path)
    os.unlink(f"{path}.fai")
    assert chrom_sizes(path) == {"a": 48, "b": 20}


def test_n_runs_across_blocks(tmp_path):
    seq = "NNN" + "A" * 5 + "N" * 7 + "C" * 3 + "NN"
    path = write_fasta(tmp_path / "n.fa", {"c": seq}, width=7)
    expected = [(0, 3), (8, 15), (18, 20)]
    for block in (1, 2, 3, 4, 7, 100):
        s, e = n_runs(open_fasta(path), "c", block=block)
        assert list(zip(s.tolist(), e.tolist())) == expected, block


def test_fetch_speed(tmp_path):
    rng = np.random.default_rng(1)
    seq = "".join(rng.choice(list("ACGT"), 2_000_000))
    path = write_fasta(tmp_path / "big.fa", {"c": seq})
    fasta = open_fasta(path)
    starts = np.arange(0, 2_000_000 - 1000, 1000)
    regions = pd.DataFrame({"chrom": "c", "start": starts, "end": starts + 1000})
    t0 = time.perf_counter()
    x = fetch_one_hot(fasta, regions)
    rate = x.shape[0] * x.shape[2] / (time.perf_counter() - t0)
    assert decode(x[5]) == seq[5000:6000]
    assert rate > 1e6, f"{rate:.3g} bp/s"
