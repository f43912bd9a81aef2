"""plrp gather: shards -> relevance.npy / hypothetical.npy / ohe.npy / relevance.npz in region order.

Shards are synthetic ``.npz`` files with the store's shard keys (no model needed): each row's values encode its
region number, so a row written to the wrong place shows.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from lrp.core.errors import PlrpError
from lrp.genomics.store import open_store
from lrp.steps.cli import main

L, N_LAYERS, NAMES = 12, 3, np.array(["head", "conv2", "conv1"])
OUTPUTS = ("relevance.npy", "hypothetical.npy", "ohe.npy", "relevance.npz")  # the default arrays


def expected(n):
    """The gathered arrays of ``n`` regions, row ``i`` a function of ``i``."""
    i = np.arange(n, dtype=np.float32)[:, None, None]
    base = np.arange(4 * L, dtype=np.float32).reshape(1, 4, L)
    ohe = np.zeros((n, 4, L), np.int8)
    ohe[np.arange(n)[:, None], (np.arange(n)[:, None] + np.arange(L)) % 4, np.arange(L)] = 1
    return {
        "relevance": (i * 1000 + base) * ohe,
        "hypothetical": -(i * 1000 + base),
        "ohe": ohe,
        "index": np.arange(n, dtype=np.int64),
        "target": np.arange(n, dtype=np.float32) / 7,
        "layer_gini": (np.arange(n * N_LAYERS, dtype=np.float32) / 100).reshape(n, N_LAYERS),
        "layer_names": NAMES,
    }


def write_shard(path, rows, n_total=None, full=None):
    """A shard ``.npz`` holding region rows ``rows`` (any order) of :func:`expected`."""
    full = full if full is not None else expected(n_total)
    rows = np.asarray(rows, dtype=np.int64)
    arrays = {k: v[rows] for k, v in full.items() if k != "layer_names"}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays, layer_names=NAMES)
    return str(path)


def write_table(path, n):
    with open(path, "w") as handle:
        handle.writelines(f"chr1\t{i * L}\t{(i + 1) * L}\tr{i}\t0\t.\n" for i in range(n))
    return str(path)


def gather(tmp_path, shards, regions, *options):
    argv = ["gather", "--shards", *shards, "--regions", regions, "--out-dir", str(tmp_path)]
    return main(argv + list(options))


def leftovers(folder):
    return sorted(p for p in os.listdir(folder) if not p.startswith("shard") and p != "regions.bed")


@pytest.fixture
def table(tmp_path):
    n, size = 23, 5  # 5 shards, the last one short
    full = expected(n)
    shards = [
        write_shard(
            tmp_path / f"shard{k}.npz", np.arange(k * size, min((k + 1) * size, n)), full=full
        )
        for k in range(-(-n // size))
    ]
    return {
        "n": n,
        "full": full,
        "shards": shards,
        "regions": write_table(tmp_path / "regions.bed", n),
    }


def test_shards_out_of_order_gather_into_the_right_rows(tmp_path, table):
    shards = [table["shards"][i] for i in (3, 0, 4, 2, 1)]
    assert gather(tmp_path, shards, table["regions"]) == 0
    for key in ("relevance", "hypothetical", "ohe"):
        got = np.load(tmp_path / f"{key}.npy")
        assert got.dtype == table["full"][key].dtype and got.shape == (table["n"], 4, L)
        np.testing.assert_array_equal(got, table["full"][key], err_msg=key)
    store = open_store(tmp_path / "relevance.npz")
    for key, want in table["full"].items():
        got = store.arrays.get(key, store.small.get(key))
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=key)
    assert leftovers(tmp_path) == sorted(OUTPUTS)  # no temporary file left behind


def test_rows_in_any_order_within_a_shard(tmp_path, table):
    n, full = table["n"], table["full"]
    rng = np.random.default_rng(0)
    perm = rng.permutation(n)
    shards = [
        write_shard(tmp_path / "shard_a.npz", perm[:9], full=full),  # not contiguous, not sorted
        write_shard(tmp_path / "shard_b.npz", perm[9:], full=full),
    ]
    assert gather(tmp_path, shards, table["regions"]) == 0
    store = open_store(tmp_path / "relevance.npz")
    for key, want in full.items():
        got = store.arrays.get(key, store.small.get(key))
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=key)


def test_the_arrays_are_stored_once_and_the_npz_holds_the_small_ones(tmp_path, table):
    assert gather(tmp_path, table["shards"], table["regions"]) == 0
    with zipfile.ZipFile(tmp_path / "relevance.npz") as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert zf.testzip() is None  # CRCs of the streamed members are right
        names = sorted(zf.namelist())
    assert names == [f"{k}.npy" for k in ("index", "layer_gini", "layer_names", "target")]
    with np.load(tmp_path / "relevance.npz") as npz:
        assert npz["index"].dtype == np.int64 and npz["layer_names"].tolist() == NAMES.tolist()


def test_relevance_left_out_is_read_as_hypothetical_times_ohe(tmp_path, table):
    from lrp.genomics.store import ProductRows

    argv = ["--arrays", "hypothetical", "ohe"]
    assert gather(tmp_path, table["shards"], table["regions"], *argv) == 0
    assert not (tmp_path / "relevance.npy").exists()
    rel = open_store(tmp_path / "relevance.npz").relevance
    assert isinstance(rel, ProductRows) and rel.shape == (table["n"], 4, L)
    want = table["full"]["hypothetical"] * table["full"]["ohe"]
    np.testing.assert_array_equal(rel[3:17], want[3:17])
    np.testing.assert_array_equal(rel[[20, 2, 3, 4, 0]], want[[20, 2, 3, 4, 0]])
    np.testing.assert_array_equal(rel[-1, :, 2:5], want[-1, :, 2:5])


def test_a_selection_keeps_only_its_windows_in_float16(tmp_path, table):
    from lrp.genomics.store import write_selection

    keep = np.array([0, 5, 6, 7, 19, table["n"] - 1])
    write_selection(tmp_path / "selection.npz", keep)
    argv = ["--selection", str(tmp_path / "selection.npz"), "--dtype", "float16"]
    assert gather(tmp_path, table["shards"], table["regions"], *argv) == 0
    store = open_store(tmp_path / "relevance.npz")
    assert np.array_equal(store.index, keep) and len(store) == keep.size
    assert np.load(tmp_path / "hypothetical.npy").dtype == np.float16
    hyp = store.hypothetical[:]
    assert hyp.dtype == np.float32  # read back as float32
    want = table["full"]["hypothetical"][keep]
    np.testing.assert_array_equal(hyp, want.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(store.ohe[:], table["full"]["ohe"][keep])
    np.testing.assert_array_equal(store.target, table["full"]["target"][keep])


def test_missing_shard_is_a_clear_error_and_writes_nothing(tmp_path, table, capsys):
    shards = table["shards"][:2] + table["shards"][3:]
    assert gather(tmp_path, shards, table["regions"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (
        "missing e.g. rows [10, 11, 12, 13, 14]" in err and "Fix: rerun the missing shards" in err
    )
    assert leftovers(tmp_path) == []


def test_duplicated_row_is_a_clear_error_and_writes_nothing(tmp_path, table, capsys):
    extra = write_shard(
        tmp_path / "shard_dup.npz", [4, 5], full=table["full"]
    )  # rows of shards 0, 1
    assert gather(tmp_path, table["shards"] + [extra], table["regions"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "more than once (e.g. rows [4, 5])" in err and "Fix:" in err
    assert leftovers(tmp_path) == []
    # The same row twice inside one shard.
    inner = write_shard(tmp_path / "shard_inner.npz", [0, 1, 1, 2, 3, 4], full=table["full"])
    assert gather(tmp_path, [inner] + table["shards"][1:], table["regions"]) == 1
    assert "more than once (e.g. rows [1])" in capsys.readouterr().err
    # A shard given twice.
    assert gather(tmp_path, table["shards"] + table["shards"][:1], table["regions"]) == 1
    assert "more than once (e.g. rows [0, 1, 2, 3, 4])" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_index_out_of_range_is_a_clear_error(tmp_path, table, capsys):
    short = write_table(tmp_path / "short.bed", table["n"] - 3)
    assert gather(tmp_path, table["shards"], short) == 1
    err = capsys.readouterr().err
    assert "region index out of range" in err and "(20 regions)" in err
    assert leftovers(tmp_path) == ["short.bed"]


def test_failed_gather_leaves_no_output_files(tmp_path, table, monkeypatch):
    from lrp.genomics import store

    assert gather(tmp_path, table["shards"], table["regions"]) == 0
    old = {name: (tmp_path / name).read_bytes() for name in OUTPUTS}

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C while the npz is written

    monkeypatch.setattr(store, "_arange_member", boom)
    with pytest.raises(KeyboardInterrupt):
        gather(tmp_path, table["shards"][::-1], table["regions"])
    assert leftovers(tmp_path) == sorted(OUTPUTS)  # no temporary file; the old outputs untouched
    assert {name: (tmp_path / name).read_bytes() for name in OUTPUTS} == old
    for name in OUTPUTS:
        (tmp_path / name).unlink()
    monkeypatch.undo()
    # A bad shard after good ones: an error, nothing written.
    bad = tmp_path / "shard_bad.npz"
    np.savez(bad, index=np.arange(5, 10), relevance=np.zeros((5, 4, L + 1), np.float32))
    with pytest.raises(PlrpError, match="relevance of shape"):
        store.gather(
            [table["shards"][0], str(bad)] + table["shards"][2:], table["n"], tmp_path, "regions"
        )
    assert leftovers(tmp_path) == []


def test_killed_gather_leaves_no_output_files(tmp_path, table):
    """SIGKILL while the npz is being written: none of the four outputs exists afterwards (only the hidden
    temporaries of the atomic writes, which no killed process can remove)."""
    script = textwrap.dedent(
        f"""
        import sys, time
        import lrp.genomics.store as store
        from lrp.steps.cli import main

        def slow(*args, **kwargs):
            print("writing", flush=True)
            time.sleep(60)

        store._arange_member = slow
        main(["gather", "--shards", *{table["shards"]!r}, "--regions", {table["regions"]!r},
              "--out-dir", {str(tmp_path)!r}])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    for name in OUTPUTS:
        assert not (tmp_path / name).exists(), name
