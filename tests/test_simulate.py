"""The simulated demo genome: background statistics, planted sites, grammar, reproducibility."""

import hashlib
import itertools

import numpy as np
import pyfaidx
import pytest

from lrp.demo.simulate import (
    BACKGROUND_RATE,
    DEFAULT_PAIRS,
    DEFAULT_TFS,
    SITE_STRENGTH,
    expected_coverage,
    genome_stats,
    simulate,
    simulate_to,
)
from lrp.motifs.database import read_meme, select_motifs
from lrp.steps.cli import main

LENGTHS = (80_000, 60_000)
COMP = str.maketrans("ACGT", "TGCA")


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    simulate_to(out, seed=7, chrom_lengths=LENGTHS)
    sites = [line.split("\t") for line in (out / "known_sites.bed").read_text().splitlines()]
    sites = [(c, int(s), int(e), n, int(sc), st) for c, s, e, n, sc, st in sites]
    return out, sites


def bg_freq():
    """Human-like background frequencies, set independently of the module: A/T 0.295, C/G 0.205."""
    return np.array([0.295, 0.205, 0.205, 0.295])


def rel_scores(pfm, seqs):
    """Relative log-odds scores (0-1) of equal-length sequences under a PFM (4, w)."""
    pwm = np.log2((pfm + 0.01) / (1 + 0.04) / bg_freq()[:, None])
    idx = np.array([["ACGT".index(b) for b in s] for s in seqs])
    raw = pwm[idx, np.arange(pfm.shape[1])].sum(1)
    lo, hi = pwm.min(0).sum(), pwm.max(0).sum()
    return (raw - lo) / (hi - lo)


def test_files_and_lengths(sim):
    out, sites = sim
    fa = pyfaidx.Fasta(str(out / "genome.fa"))
    assert [(k, len(v)) for k, v in fa.items()] == [
        ("chr1", LENGTHS[0]),
        ("chr2", LENGTHS[1]),
    ]
    assert set(str(fa["chr1"][:])) <= set("ACGT")
    assert sorted(sites, key=lambda s: (s[0], s[1])) == sites
    for a, b in itertools.pairwise(sites):
        assert a[0] != b[0] or a[2] <= b[1], "sites overlap"
    assert all(0 <= s[4] <= 1000 and s[5] in "+-" for s in sites)
    motifs = read_meme(out / "planted_motifs.meme")
    planted = {"CTCF", "Nrf1", "REST", "ZNF143", "TAL1::TCF3", "GATA1"}
    assert {s[3] for s in sites} == set(motifs) == planted


def test_background_statistics():
    result = simulate(seed=11, chrom_lengths=(150_000, 150_000), isochores=False, density=0.01)
    stats = genome_stats(result["genome"])
    assert abs(stats["gc"] - 0.41) < 0.01, stats
    assert 0.18 < stats["cpg_obs_exp"] < 0.30, stats  # human-like CpG depletion
    assert stats["cpg_obs_exp"] < 0.5  # a uniform background would give ~1.0
    # isochores: segments at different GC levels
    result = simulate(seed=11, chrom_lengths=(400_000,), density=0.01)
    gcs = {}
    seq = result["genome"]["chr1"]
    for start, end, weight in result["segments"]["chr1"]:
        part = seq[start:end]
        gcs.setdefault(weight, []).append((part.count("G") + part.count("C")) / len(part))
    if len(gcs) > 1:
        means = [np.mean(gcs[w]) for w in sorted(gcs)]
        assert means == sorted(means) and means[-1] - means[0] > 0.03, gcs


def test_sites_score_high_on_recorded_strand(sim):
    out, sites = sim
    fa = pyfaidx.Fasta(str(out / "genome.fa"))
    motifs = read_meme(out / "planted_motifs.meme")
    rng = np.random.default_rng(0)
    for tf, pfm in motifs.items():
        rows = [s for s in sites if s[3] == tf]
        assert len(rows) >= 10
        assert {s[5] for s in rows} == {"+", "-"}, f"{tf}: both strands"
        w = pfm.shape[1]
        assert all(s[2] - s[1] == w for s in rows)
        fwd = [str(fa[s[0]][s[1] : s[2]]) for s in rows]
        rc = [f.translate(COMP)[::-1] for f in fwd]
        on = [r if s[5] == "-" else f for s, f, r in zip(rows, fwd, rc)]
        off = [f if s[5] == "-" else r for s, f, r in zip(rows, fwd, rc)]
        score_on, score_off = rel_scores(pfm, on), rel_scores(pfm, off)
        assert score_on.min() >= 0.75, (tf, score_on.min())
        consensus = "".join("ACGT"[i] for i in pfm.argmax(0))
        palindromic = rel_scores(pfm, [consensus.translate(COMP)[::-1]])[0] > 0.8
        # the recorded strand is the one the motif reads on (clearly so unless nearly palindromic)
        assert score_on.mean() > score_off.mean() + (0.01 if palindromic else 0.1), tf
        # random background positions score far lower
        chrom = "chr1"
        starts = rng.integers(0, LENGTHS[0] - w, 2000)
        background = rel_scores(pfm, [str(fa[chrom][s : s + w]) for s in starts])
        assert np.median(score_on) > np.quantile(background, 0.99), tf
        np.testing.assert_allclose([s[4] / 1000 for s in rows], score_on, atol=0.06)


def test_pairs_at_fixed_gap(sim):
    _, sites = sim
    ((first, second, gap),) = DEFAULT_PAIRS
    a_sites = [s for s in sites if s[3] == first]
    b_sites = {(s[0], s[1]): s for s in sites if s[3] == second}
    assert len(a_sites) == len(b_sites) > 5
    ends = {(s[0], s[2]): s for s in sites if s[3] == second}
    for s in a_sites:
        if s[5] == "+":  # first, gap, second
            partner = b_sites.get((s[0], s[2] + gap))
        else:  # reverse complement of the unit: second, gap, first
            partner = ends.get((s[0], s[1] - gap))
        assert partner is not None and partner[5] == s[5], s


def test_density_and_empty_windows(sim):
    _, sites = sim
    per_kb = len(sites) / (sum(LENGTHS) / 1000)
    # default density: 1 site per kb; clusters of 1 + Poisson(1) units make the count vary by about 15% here
    assert 0.65 < per_kb < 1.35, per_kb
    empty = 0
    tiles = 0
    for chrom, length in zip(("chr1", "chr2"), LENGTHS):
        for start in range(0, length - 1000 + 1, 1000):
            tiles += 1
            empty += not any(
                s[0] == chrom and start <= s[1] and s[2] <= start + 1000 for s in sites
            )
    assert empty / tiles > 0.5


def test_coverage_peaks_on_planted_sites(sim):
    _, sites = sim
    cover = expected_coverage(sites, dict(zip(("chr1", "chr2"), LENGTHS)))
    assert [len(cover[c]) for c in ("chr1", "chr2")] == list(LENGTHS)
    inside = np.zeros(sum(LENGTHS), bool)
    offset = {"chr1": 0, "chr2": LENGTHS[0]}
    for chrom, start, end, name, *_ in sites:
        inside[offset[chrom] + start : offset[chrom] + end] = True
        # the site's own footprint reaches its TF's strength at the centre (a neighbour's adds to it)
        assert cover[chrom][start:end].max() >= BACKGROUND_RATE + 0.9 * SITE_STRENGTH[name], name
    flat = np.concatenate([cover["chr1"], cover["chr2"]])
    # every local maximum above background lies in a site, and far from sites the rate is the background
    peaks = np.flatnonzero((flat[1:-1] > flat[:-2]) & (flat[1:-1] >= flat[2:])) + 1
    peaks = peaks[flat[peaks] > 2 * BACKGROUND_RATE]
    assert len(peaks) >= len(sites) // 2 and inside[peaks].all()
    near = np.convolve(inside, np.ones(101), mode="same") > 0
    np.testing.assert_allclose(flat[~near], BACKGROUND_RATE, rtol=1e-6)
    # the strengths are of one order of magnitude: no motif dominates
    strengths = [SITE_STRENGTH[s[3]] for s in sites]
    assert max(strengths) / min(strengths) < 2


def test_same_seed_same_bytes(sim, tmp_path):
    out, _ = sim
    simulate_to(tmp_path / "a", seed=7, chrom_lengths=LENGTHS)
    for name in (
        "genome.fa",
        "known_sites.bed",
        "planted_motifs.meme",
        "simulation.json",
    ):
        assert md5(tmp_path / "a" / name) == md5(out / name), name
    simulate_to(tmp_path / "b", seed=8, chrom_lengths=LENGTHS)
    assert md5(tmp_path / "b" / "genome.fa") != md5(out / "genome.fa")
    assert md5(tmp_path / "b" / "known_sites.bed") != md5(out / "known_sites.bed")


def test_planted_motifs_are_distinct():
    from memelite import tomtom

    defaults = list(DEFAULT_TFS) + [tf for pair in DEFAULT_PAIRS for tf in pair[:2]]
    motifs, ids = select_motifs(names=defaults)
    database, db_ids = select_motifs()  # all CORE vertebrates: calibrated p-values
    order = list(db_ids.values())
    pvals = tomtom(list(motifs.values()), list(database.values()))[0]
    for q, name in enumerate(motifs):
        assert pvals[q, order.index(ids[name])] < 1e-8, name  # finds itself
        for other in motifs:
            if other != name:
                assert pvals[q, order.index(ids[other])] > 1e-3, (name, other)


def test_cli(tmp_path):
    argv = [
        "simulate",
        "--out-dir",
        str(tmp_path),
        "--seed",
        "3",
        "--chrom-lengths",
        "20000",
        "30000",
        "--tfs",
        "CTCF",
        "FOXA1",
        "--pairs",
        "SPI1,NRF1,4",
        "--density",
        "1.0",
        "--no-isochores",
    ]
    assert main(argv) == 0
    sites = (tmp_path / "known_sites.bed").read_text().splitlines()
    assert {line.split("\t")[3] for line in sites} == {"CTCF", "FOXA1", "Spi1", "Nrf1"}
    assert main(["simulate", "--out-dir", str(tmp_path / "x"), "--density", "0"]) == 1
    assert not (tmp_path / "x" / "genome.fa").exists()


def test_single_sites_are_named_by_their_own_motif():
    """The demo plants single sites of TFs whose one sampled site TOMTOM names correctly among all JASPAR
    vertebrate matrices (lrp.demo.simulate's choice of DEFAULT_TFS): the calls can then be checked by name.
    """
    from lrp.demo.simulate import log_odds, sample_site
    from lrp.motifs.calls import tomtom_best

    database, _ = select_motifs()
    names = list(database)
    rng = np.random.default_rng(0)
    for tf in DEFAULT_TFS:
        ((name, pfm),) = select_motifs(names=[tf])[0].items()
        pwm = log_odds(tuple(map(tuple, pfm)))
        queries = []
        for _ in range(30):
            codes, _ = sample_site(pfm, pwm, rng, 0.9)  # the demo's min_score
            queries.append(np.eye(4)[:, codes])
        best = tomtom_best(queries, list(database.values()))["match_idx"]
        share = np.mean([names[i].split("_MA")[0] == name for i in best])
        assert share >= 0.6, (name, share)
