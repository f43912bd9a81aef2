"""The disk benchmark's float16 comparison (benchmarks/genome_scale.py): on real stores written by
``gather`` in float32 and float16, its block-wise error and correlation equal numpy's on the whole arrays,
and its motif-call comparison counts shared and lost calls."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import genome_scale as G

from lrp.genomics.store import gather, write_shard


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("f16")
    rng = np.random.default_rng(0)
    n, L = 40, 64
    ohe = np.eye(4, dtype=np.int8)[rng.integers(0, 4, (n, L))].transpose(0, 2, 1).copy()
    hyp = (rng.standard_normal((n, 4, L)) * np.exp(rng.normal(size=(n, 1, 1)))).astype(np.float32)
    shards = []
    for k, (lo, hi) in enumerate([(0, 25), (25, 40)]):
        path = root / f"shard{k}.npz"
        write_shard(
            path,
            {
                "relevance": hyp[lo:hi] * ohe[lo:hi],
                "hypothetical": hyp[lo:hi],
                "ohe": ohe[lo:hi],
                "index": np.arange(lo, hi, dtype=np.int64),
                "target": rng.standard_normal(hi - lo).astype(np.float32),
                "layer_gini": rng.random((hi - lo, 2), dtype=np.float32),
                "layer_names": np.array(["a", "b"]),
            },
        )
        shards.append(str(path))
    out = {}
    for dtype in ("float32", "float16"):
        gather(shards, n, root / dtype, dtype=dtype)
        out[dtype] = root / dtype / "relevance.npz"
    return out, hyp * ohe, hyp


def test_float16_error_matches_numpy(stores, monkeypatch):
    import lrp.genomics.store as S

    paths, relevance, _ = stores
    monkeypatch.setattr(
        S, "CHUNK_BYTES", 4 * 4 * 64 * 7
    )  # several blocks: the sums are carried over
    got = G._compare_stores(paths["float32"], paths["float16"], "relevance")
    x = relevance.astype(np.float64)
    y = relevance.astype(np.float16).astype(np.float64)
    d = np.abs(x - y)
    assert got["max_abs"] == pytest.approx(d.max(), rel=1e-12)
    assert got["mean_abs"] == pytest.approx(d.mean(), rel=1e-9)
    assert got["peak_abs"] == pytest.approx(np.abs(x).max(), rel=1e-12)
    assert got["pearson_r"] == pytest.approx(np.corrcoef(x.ravel(), y.ravel())[0, 1], abs=1e-12)
    assert 0 < got["max_abs"] and got["pearson_r"] < 1  # float16 did round


def test_call_comparison(tmp_path):
    cols = ["chrom", "start", "end", "strand", "name"]
    a = pd.DataFrame(
        [["c", 1, 9, "+", "X"], ["c", 20, 30, "-", "Y"], ["d", 5, 12, "+", "X"]], columns=cols
    )
    b = pd.concat([a.iloc[:2], pd.DataFrame([["d", 5, 13, "+", "X"]], columns=cols)])
    for df, name in ((a, "a.tsv"), (b, "b.tsv")):
        df.to_csv(tmp_path / name, sep="\t", index=False)
    got = G._compare_calls(tmp_path / "a.tsv", tmp_path / "b.tsv")
    assert (got["identical"], got["only_float32"], got["only_float16"]) == (2, 1, 1)
    assert got["jaccard"] == pytest.approx(2 / 4)
