"""Simulate the demo genome: a human-like background with JASPAR motifs planted at known sites.

Background: a first-order (dinucleotide) Markov chain whose transition probabilities come from human genome
dinucleotide frequencies (``HUMAN_DINUCLEOTIDE``: GC about 41%, CpG observed/expected about 0.24), optionally
in isochore-like segments (tens of kb) whose GC is shifted up or down. Sites: clusters ("enhancers") of
1 + Poisson(1) units placed along each chromosome with exponential gaps; a unit (all kinds equally likely) is
one site of a TF in ``tfs`` or a pair of sites with a fixed gap (the grammar: by default an E-box
(TAL1::TCF3) 7 bp before a GATA1 site, as in the GATA1-TAL1 composite; both motifs are short and weak, so
each alone is common in any background and only the pair marks a planted site). Each site sequence is sampled column by column from the TF's PFM, conditioned on a relative
PWM score >= ``min_score`` (default 0.9: planted sites stand out from chance matches, which in this
background occur at about 0.003 (CTCF) per kb at that score), on a random strand (a pair
shares its strand). Same seed -> same bytes.

Assay (:func:`expected_coverage`): a ChIP-nexus-like per-base coverage over the genome, the background rate
``BACKGROUND_RATE`` plus, at each planted site, a Gaussian footprint (sd ``FOOTPRINT_SD`` bp) centred on the
site whose height is the TF's ``SITE_STRENGTH`` (the two sites of a pair each add their own). Read counts are
Poisson draws from it (the training draws them with its seed: :mod:`lrp.demo.train`).
"""

import itertools
import json
import logging
from pathlib import Path

import numpy as np

from lrp.core.atomic import atomic_open
from lrp.core.errors import input_error
from lrp.motifs.database import select_motifs, write_meme

log = logging.getLogger("plrp")

ALPHABET = "ACGT"
#: human (hg38, non-N) dinucleotide frequencies in percent, rows = first base, columns = second, ACGT.
#: Strand-symmetric (AC = GT, ...). Implied GC 41.0%, CpG observed/expected 0.24.
HUMAN_DINUCLEOTIDE = np.array(
    [
        [9.7, 5.0, 7.0, 7.6],
        [7.3, 5.2, 1.0, 7.0],
        [5.9, 4.3, 5.2, 5.0],
        [6.5, 5.9, 7.3, 9.7],
    ]
)
#: GC tilts of the isochore-like segments: weight on C and G in the transition probabilities
#: (0.8 -> about 36% GC, 1.0 -> 41%, 1.25 -> 46%)
ISOCHORE_GC_WEIGHTS = (0.8, 1.0, 1.25)
ISOCHORE_MEAN_KB = 100.0
#: TFs planted as single sites: long, distinct motifs that TOMTOM names correctly from one sampled site among
#: JASPAR's 1,019 vertebrate matrices (30 sites each at relative score >= 0.8, best match = the TF: REST 0.97,
#: ZNF143 0.93, NRF1 0.87, CTCF 0.63; for comparison SPI1 0.30, GATA1 0.47, TAL1::TCF3 0.00: their families
#: hold near-identical matrices)
DEFAULT_TFS = ("CTCF", "NRF1", "REST", "ZNF143")
#: (first TF, second TF, gap in bp between the end of the first and the start of the second)
DEFAULT_PAIRS = (("TAL1::TCF3", "GATA1", 7),)
DEFAULT_LENGTHS = (300_000,) * 4
MARGIN = 500  # bp at each chromosome end without sites
#: expected reads per bp anywhere (the assay's background): 50 reads per kb
BACKGROUND_RATE = 0.05
#: expected reads per bp at the centre of a site, per TF (JASPAR names as in known_sites.bed; a TF not listed
#: gets ``DEFAULT_SITE_STRENGTH``). All within a factor 1.6, so that no motif dominates the signal; a site's
#: footprint holds about 2.5 sd x strength reads (45 at strength 3), about one background kb
SITE_STRENGTH = {
    "CTCF": 3.5,
    "Nrf1": 3.0,
    "REST": 3.0,
    "ZNF143": 2.5,
    "TAL1::TCF3": 2.2,
    "GATA1": 2.2,
}
DEFAULT_SITE_STRENGTH = 3.0
FOOTPRINT_SD = 6.0  # bp: the footprint's Gaussian, cut at 4 sd


def transition_matrix(dinucleotide=HUMAN_DINUCLEOTIDE, gc_weight=1.0):
    """Dinucleotide frequencies (4, 4) -> transition probabilities P(next | previous) (4, 4).

    ``gc_weight`` multiplies the probability of moving to C or G (then rows are renormalised).
    """
    freq = np.asarray(dinucleotide, dtype=np.float64) * np.array([1, gc_weight, gc_weight, 1])
    return freq / freq.sum(1, keepdims=True)


def stationary(transition):
    """Stationary base frequencies (4,) of a transition matrix."""
    values, vectors = np.linalg.eig(transition.T)
    v = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    return v / v.sum()


def markov_chain(length, transition, rng, first=None):
    """Sample ``length`` bases (uint8 codes 0-3 in ACGT order) from a first-order Markov chain."""
    cum = np.cumsum(transition, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(length)
    # next state for every position and every possible previous state, then one cheap sequential pass
    rows = [np.searchsorted(cum[s], u, side="right").astype(np.uint8).tobytes() for s in range(4)]
    if first is None:
        first = int(np.searchsorted(np.cumsum(stationary(transition)), rng.random(), side="right"))
        first = min(first, 3)
    states = itertools.accumulate(range(1, length), lambda s, i: rows[s][i], initial=first)
    return np.fromiter(states, dtype=np.uint8, count=length)


def background(length, rng, isochores=True):
    """Human-like background of ``length`` bp -> (uint8 codes (length,), [(start, end, gc_weight)])."""
    segments, start = [], 0
    while start < length:
        if isochores:
            size = max(20_000, int(rng.exponential(ISOCHORE_MEAN_KB * 1000)))
            weight = float(rng.choice(ISOCHORE_GC_WEIGHTS))
        else:
            size, weight = length, 1.0
        end = min(length, start + size)
        segments.append((start, end, weight))
        start = end
    codes, prev = [], None
    for start, end, weight in segments:
        part = markov_chain(end - start, transition_matrix(gc_weight=weight), rng, first=prev)
        prev = int(part[-1])
        codes.append(part)
    return np.concatenate(codes), segments


def log_odds(pfm, bg=None, pseudo=1e-3):
    """PWM (4, w) of log2((p + pseudo) / bg), bg = base frequencies (4,) (default human stationary)."""
    bg = stationary(transition_matrix()) if bg is None else np.asarray(bg, dtype=np.float64)
    p = (np.asarray(pfm, dtype=np.float64) + pseudo) / (1 + 4 * pseudo)
    return np.log2(p / bg[:, None])


def relative_score(pwm, codes):
    """Relative PWM score in [0, 1] of one site (codes (w,), motif orientation): (s - min) / (max - min)."""
    s = pwm[codes, np.arange(pwm.shape[1])].sum()
    lo, hi = pwm.min(0).sum(), pwm.max(0).sum()
    return float((s - lo) / (hi - lo))


def sample_site(pfm, pwm, rng, min_score, tries=200):
    """Sample one site (codes (w,), motif orientation) from the PFM with relative score >= min_score."""
    cum = np.cumsum(pfm, axis=0)
    cum[-1] = 1.0
    best, best_score = None, -1.0
    for _ in range(tries):
        codes = (rng.random(pfm.shape[1])[None, :] >= cum).sum(0).astype(np.uint8)
        score = relative_score(pwm, codes)
        if score >= min_score:
            return codes, score
        if score > best_score:
            best, best_score = codes, score
    return best, best_score


def _units(tfs, pairs):
    """Unit kinds: ('site', tf) for each TF and ('pair', a, b, gap) for each pair, equally likely."""
    return [("site", t) for t in tfs] + [("pair", *p) for p in pairs]


def plant(codes, chrom, motifs, pwms, units, rng, density, min_score):
    """Plant clustered sites into ``codes`` (modified in place) -> list of BED6 tuples, sorted by start.

    ``density`` is the mean number of sites per kb; clusters hold 1 + Poisson(1) units.
    """

    def unit_width(u):
        return motifs[u[1]].shape[1] + (u[3] + motifs[u[2]].shape[1] if u[0] == "pair" else 0)

    # a cluster holds 2 units on average, each followed by 10-100 bp: choose the gap between clusters
    # so that the mean density of sites is ``density`` per kb
    sites_per_cluster = 2.0 * np.mean([1 if u[0] == "site" else 2 for u in units])
    span = 2.0 * (np.mean([unit_width(u) for u in units]) + 55)
    mean_gap = max(100.0, sites_per_cluster * 1000.0 / density - span)
    sites, pos, length = [], MARGIN, len(codes)
    while True:
        pos += int(rng.exponential(mean_gap))
        for _ in range(1 + rng.poisson(1.0)):
            unit = units[rng.integers(len(units))]
            strand = "+" if rng.random() < 0.5 else "-"
            if unit[0] == "site":
                parts = [(unit[1], 0)]
            else:
                a, b, gap = unit[1:]
                parts = [(a, 0), (b, motifs[a].shape[1] + gap)]
            width = max(off + motifs[t].shape[1] for t, off in parts)
            if pos + width > length - MARGIN:
                return sites
            for tf, off in parts:
                site, score = sample_site(motifs[tf], pwms[tf], rng, min_score)
                w = len(site)
                if strand == "+":
                    start = pos + off
                    codes[start : start + w] = site
                else:  # the whole unit is reverse-complemented: offsets count from its right end
                    start = pos + width - off - w
                    codes[start : start + w] = 3 - site[::-1]
                sites.append((chrom, start, start + w, tf, round(1000 * score), strand))
            pos += width + int(rng.integers(10, 101))


def simulate(
    seed=0,
    chrom_lengths=DEFAULT_LENGTHS,
    tfs=DEFAULT_TFS,
    pairs=DEFAULT_PAIRS,
    density=1.0,
    release="JASPAR2026",
    isochores=True,
    min_score=0.9,
):
    """Simulate a genome -> dict with ``genome`` {chrom: str}, ``sites`` (sorted BED6 tuples),
    ``motifs`` {TF: (4, w) PFM}, ``ids`` {TF: matrix ID}, ``segments`` {chrom: [(start, end, gc_weight)]}.

    ``tfs`` (planted as single sites) are JASPAR names (CORE vertebrates of ``release``) or matrix IDs;
    sites are named by JASPAR's TF name. ``pairs`` is [(tf_a, tf_b, gap_bp)], planted only as pairs unless
    also in ``tfs``.
    """
    if density <= 0:
        raise input_error("simulate", "density", f"{density} sites/kb", "give a positive density")
    if not chrom_lengths or min(chrom_lengths) < 4 * MARGIN:
        raise input_error(
            "simulate",
            "chrom-lengths",
            f"{chrom_lengths}",
            f"give chromosome lengths of at least {4 * MARGIN} bp",
        )
    queries = list(dict.fromkeys(list(tfs) + [t for p in pairs for t in p[:2]]))
    motifs, ids = select_motifs(release=release, names=queries)
    if len(set(ids.values())) != len(ids):
        raise input_error(
            "simulate",
            "tfs",
            f"the same JASPAR matrix twice ({', '.join(queries)})",
            "list each TF once",
        )
    names = list(motifs)
    by_query = dict(zip(queries, names))
    singles = [by_query[t] for t in dict.fromkeys(tfs)]
    pairs = [(by_query[a], by_query[b], int(g)) for a, b, g in pairs]
    for a, b, g in pairs:
        if g < 0:
            raise input_error("simulate", f"pair {a},{b},{g}", "negative gap", "give a gap >= 0 bp")
    bg = stationary(transition_matrix())
    pwms = {t: log_odds(m, bg) for t, m in motifs.items()}
    units = _units(singles, pairs)
    seeds = np.random.SeedSequence(seed).spawn(len(chrom_lengths))
    genome, sites, segments = {}, [], {}
    for k, (length, ss) in enumerate(zip(chrom_lengths, seeds)):
        chrom = f"chr{k + 1}"
        rng = np.random.default_rng(ss)
        codes, segments[chrom] = background(int(length), rng, isochores)
        sites += plant(codes, chrom, motifs, pwms, units, rng, density, min_score)
        genome[chrom] = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)[codes].tobytes().decode()
    sites.sort(key=lambda s: (s[0], s[1], s[2]))
    return {
        "genome": genome,
        "sites": sites,
        "motifs": motifs,
        "ids": ids,
        "segments": segments,
        "pairs": pairs,
    }


def expected_coverage(sites, chrom_sizes, background=BACKGROUND_RATE, sd=FOOTPRINT_SD):
    """Expected reads per bp of the simulated assay -> {chrom: (size,) float64}.

    ``sites``: rows (chrom, start, end, name, ...) as in known_sites.bed; ``chrom_sizes``: {chrom: bp}. Each
    site adds ``SITE_STRENGTH[name] * exp(-(p - c)**2 / (2 sd**2))`` at positions ``p`` within 4 sd of its
    centre ``c = (start + end - 1) / 2`` to the ``background`` rate.
    """
    cover = {c: np.full(int(n), float(background)) for c, n in chrom_sizes.items()}
    half = int(np.ceil(4 * sd))
    for chrom, start, end, name, *_ in sites:
        centre = (start + end - 1) / 2
        lo, hi = max(0, int(centre) - half), min(len(cover[chrom]), int(centre) + half + 2)
        pos = np.arange(lo, hi)
        strength = SITE_STRENGTH.get(name, DEFAULT_SITE_STRENGTH)
        cover[chrom][lo:hi] += strength * np.exp(-((pos - centre) ** 2) / (2 * sd**2))
    return cover


def write_fasta(path, genome, width=60):
    """Write {name: sequence} as FASTA with fixed-width lines (faidx-compatible), atomically."""
    with atomic_open(path) as handle:
        for name, seq in genome.items():
            handle.write(f">{name}\n")
            handle.write("\n".join(seq[i : i + width] for i in range(0, len(seq), width)))
            handle.write("\n")


def write_bed(path, sites):
    """Write BED6 tuples (chrom, start, end, name, score, strand), atomically."""
    with atomic_open(path) as handle:
        for row in sites:
            handle.write("\t".join(map(str, row)) + "\n")


def genome_stats(genome):
    """GC fraction and CpG observed/expected over {chrom: str}."""
    counts, cpg, n = {b: 0 for b in ALPHABET}, 0, 0
    for seq in genome.values():
        for b in ALPHABET:
            counts[b] += seq.count(b)
        cpg += seq.count("CG")
        n += len(seq)
    gc = (counts["C"] + counts["G"]) / n
    oe = cpg * n / max(1, counts["C"] * counts["G"])
    return {"length": n, "gc": gc, "cpg_obs_exp": oe}


def simulate_to(out_dir, **kwargs):
    """Simulate and write ``genome.fa``, ``known_sites.bed``, ``planted_motifs.meme`` and
    ``simulation.json`` (parameters, counts per TF, GC, CpG o/e) into ``out_dir``; returns the result."""
    out = Path(out_dir)
    result = simulate(**kwargs)
    write_fasta(out / "genome.fa", result["genome"])
    write_bed(out / "known_sites.bed", result["sites"])
    write_meme(out / "planted_motifs.meme", result["motifs"], result["ids"])
    counts = {t: 0 for t in result["motifs"]}
    for s in result["sites"]:
        counts[s[3]] += 1
    paired = sum(
        1
        for a, b in zip(result["sites"], result["sites"][1:])
        if a[0] == b[0]
        and any({a[3], b[3]} == {p, q} and b[1] - a[2] == g for p, q, g in result["pairs"])
    )
    meta = {
        "seed": kwargs.get("seed", 0),
        "chrom_lengths": {c: len(s) for c, s in result["genome"].items()},
        "tfs": result["ids"],
        "pairs": [{"first": a, "second": b, "gap": g} for a, b, g in result["pairs"]],
        "density_per_kb": kwargs.get("density", 1.0),
        "sites_per_tf": counts,
        "pairs_planted": paired,
        "isochores": {c: [list(x) for x in segs] for c, segs in result["segments"].items()},
        **genome_stats(result["genome"]),
    }
    with atomic_open(out / "simulation.json") as handle:
        json.dump(meta, handle, indent=1)
        handle.write("\n")
    log.info(
        "simulated %d bp on %d chromosomes, GC %.3f, CpG o/e %.2f; sites: %s",
        meta["length"],
        len(result["genome"]),
        meta["gc"],
        meta["cpg_obs_exp"],
        ", ".join(f"{t} {n}" for t, n in counts.items()),
    )
    return result
