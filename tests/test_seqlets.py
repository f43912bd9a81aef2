"""Seqlets at planted peaks of a synthetic relevance array (real tangermeme recursive_seqlets)."""

import numpy as np
import pytest

from lrp.motifs.seqlets import COLUMNS, call_seqlets, project


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(0)
    s = rng.normal(0, 0.01, (60, 200))
    s[3, 50:60] += 1.0
    s[7, 100:108] -= 1.0
    s[10, 20:30] += 0.8
    s[10, 150:160] -= 0.8
    return s


def test_positive_and_negative_peaks(scores):
    df = call_seqlets(scores, threshold=1e-4)
    assert list(df.columns) == COLUMNS
    key = {(r.example_idx, r.start, r.end, r.sign) for r in df.itertuples()}
    assert {
        (3, 50, 60, 1),
        (7, 100, 108, -1),
        (10, 20, 30, 1),
        (10, 150, 160, -1),
    } <= key
    assert (df.loc[df["sign"] > 0, "attribution"] > 0).all()
    assert (df.loc[df["sign"] < 0, "attribution"] < 0).all()
    assert len(df) == 4  # nothing called in the noise at this threshold
    top = df.set_index(["example_idx", "start"])
    assert top.loc[(3, 50), "attribution"] == pytest.approx(scores[3, 50:60].sum())


def test_trim_flank_and_no_negative(scores):
    untrimmed = call_seqlets(scores, threshold=1e-4, trim=0)
    row = untrimmed[untrimmed["example_idx"] == 3].iloc[0]
    assert row["start"] < 50 and row["end"] > 60  # the caller pads peaks with weak positions
    flanked = call_seqlets(scores, threshold=1e-4, flank=3, negative=False)
    assert (flanked["sign"] > 0).all()
    r = flanked[flanked["example_idx"] == 3].iloc[0]
    assert (r["start"], r["end"]) == (47, 63)


def test_negative_overlapping_positive_dropped():
    s = np.zeros((20, 100))
    s[0, 40:50] = 1.0
    s[0, 50:56] = -1.0  # abuts, does not overlap: kept
    s[1, 10:16] = -1.0
    df = call_seqlets(s, threshold=1e-3, trim=0.1)
    assert ((df["example_idx"] == 0) & (df["sign"] < 0)).sum() == 1
    # A negative span called inside a positive span of the same window is dropped.
    s2 = np.zeros((20, 100))
    s2[0, 40:60] = 1.0
    s2[0, 48:50] = -0.01
    df2 = call_seqlets(s2, threshold=1e-3)
    assert (df2["sign"] > 0).sum() == 1 and (df2["sign"] < 0).sum() == 0


def test_edge_cases():
    assert len(call_seqlets(np.zeros((5, 50)))) == 0
    assert len(call_seqlets(np.ones((5, 50)))) == 0
    s = np.zeros((10, 50))
    s[2, 5:10] = 2.0  # all relevance positive: no negative seqlets, no crash
    df = call_seqlets(s, threshold=1e-3)
    assert df["sign"].tolist() == [1]
    with pytest.raises(ValueError):
        call_seqlets(np.zeros((2, 4, 10)))
    with pytest.raises(ValueError):
        call_seqlets(np.full((2, 10), np.nan))


def test_max_seqlets_and_project(scores):
    df = call_seqlets(scores, threshold=1e-4, max_seqlets=2)
    assert len(df) == 2 and df["attribution"].abs().max() == pytest.approx(10, abs=0.2)
    r = np.zeros((2, 4, 5), np.float32)
    r[0, 1, 2] = 3
    assert project(r)[0, 2] == 3 and project(r).shape == (2, 5)


def test_fragments_of_one_site_are_joined():
    """A site whose middle is weakly relevant (a degenerate position) is called whole, not as two pieces;
    seqlets farther apart, or whose union would pass max_len, stay apart."""
    rng = np.random.default_rng(1)
    s = rng.normal(0, 0.01, (40, 200))
    s[2, 40:46] += 1.0
    s[2, 49:55] += 1.0  # 3 bp gap: one site
    s[2, 120:126] += 1.0
    s[2, 136:142] += 1.0  # 10 bp gap: two sites
    s[5, 60:66] -= 1.0
    s[5, 68:74] -= 1.0  # negative fragments join too
    apart = call_seqlets(s, threshold=1e-4, merge_gap=-1)
    assert {(r.start, r.end) for r in apart[apart.example_idx == 2].itertuples()} == {
        (40, 46),
        (49, 55),
        (120, 126),
        (136, 142),
    }
    joined = call_seqlets(s, threshold=1e-4, merge_gap=4)
    two = joined[joined.example_idx == 2]
    assert {(r.start, r.end) for r in two.itertuples()} == {
        (40, 55),
        (120, 126),
        (136, 142),
    }
    whole = two[two.start == 40].iloc[0]
    assert whole.attribution == pytest.approx(s[2, 40:55].sum())
    five = joined[joined.example_idx == 5]
    assert [(r.start, r.end, r.sign) for r in five.itertuples()] == [(60, 74, -1)]
    capped = call_seqlets(s, threshold=1e-4, merge_gap=4, max_len=12)
    assert (capped.end - capped.start).max() <= 12
