"""The seqlet nulls (lrp/motifs/null.py): the Laplace null and the shuffled null (each method's relevance on
dinucleotide-shuffled windows, plrp null-relevance) hold the FDR on windows with nothing planted, on draws
from the null family and on a real model's relevance, and planted signal is still called."""

import json

import numpy as np
import pytest
import torch
from models import fit_first_logit

from lrp.core.errors import PlrpError
from lrp.motifs import null as N
from lrp.motifs.seqlets import ProjectedRows, call_seqlets

FDR = 0.05
TOL = 0.01


def _called_share(scores, fdr=FDR):
    """Share of positions inside a seqlet that passes the null, and the kept seqlets."""
    seqlets = call_seqlets(scores)
    kept, info = N.filter_seqlets(scores, seqlets, fdr=fdr)
    covered = np.zeros(scores.shape, bool)
    for e, s, t in kept[["example_idx", "start", "end"]].itertuples(index=False):
        covered[e, s:t] = True
    return covered.mean(), kept, info


def _null_draws(seed, sparse):
    rng = np.random.default_rng(seed)
    s = rng.laplace(0, 1.0, (300, 200))
    if sparse:  # PLRP-like: most positions exactly zero
        s[rng.random(s.shape) < 0.9] = 0.0
    return s


@pytest.mark.parametrize("sparse", [False, True])
def test_null_family_holds_fdr_and_planted_sites_are_called(sparse):
    s = _null_draws(0, sparse)
    share, _, info = _called_share(s)
    assert share <= FDR + TOL, (share, info)
    assert np.isfinite(info["scale_pos"]) and info["scale_pos"] > 0
    # the same windows with sites planted in 10% of them: the sites are called, little else
    planted = s.copy()
    rows = np.arange(0, len(s), 10)
    planted[rows, 80:92] += 6.0  # a 12 bp site at about 13 sd of the null window sums
    _, kept_p, info_p = _called_share(planted)
    pos = kept_p[kept_p["sign"] > 0]
    hit = {
        e
        for e, a, b in pos[["example_idx", "start", "end"]].itertuples(index=False)
        if a < 92 and b > 80
    }
    assert len(hit & set(rows)) >= 0.9 * len(rows)
    off = pos[~pos["example_idx"].isin(rows) | (pos["end"] <= 80) | (pos["start"] >= 92)]
    assert len(off) <= 2 + 2 * FDR * len(pos)  # false calls: about the target share of the calls
    assert info_p["threshold_pos"] > 0


def test_real_model_on_random_sequence_holds_fdr():
    """Relevance of a small CNN (tests/models.py) on random sequence: nothing is planted, so at most the
    target share of positions may be called, for a dense (gradient x input), a conservative (lrp) and a
    pruned (plrp-lambda) method alike."""
    from models import SmallCNN, one_hot

    from lrp.engine.explain import explain

    torch.manual_seed(0)
    model = SmallCNN(length=120).eval()
    x = one_hot(200, 120, seed=1)
    for method, params in (
        ("gradient-x-input", {}),
        ("lrp", {}),
        ("plrp-lambda", {"p_pos": 0.5}),
    ):
        out = explain(model, x, method=method, target={"index": 0}, **params)
        scores = out.relevance.sum(1).double().numpy()
        share, _, info = _called_share(scores)
        assert share <= FDR + TOL, (method, share, info)


def test_sparse_edge_cases_neither_divide_by_zero_nor_call_everything():
    zeros = np.zeros((20, 100))
    kept, info = N.filter_seqlets(zeros, call_seqlets(zeros), fdr=FDR)
    assert len(kept) == 0 and info["threshold_pos"] == np.inf
    one = zeros.copy()
    one[3, 40:50] = 1.0  # one site, every other position exactly zero: no null to tell it from
    kept, info = N.filter_seqlets(one, call_seqlets(one), fdr=FDR)
    assert set(kept["example_idx"]) <= {3} and info["scale_pos"] > 0
    # sites in a tenth of the rows, all else exactly zero or float32 residue: the sites, nothing else
    many = zeros.copy()
    many[::10, 40:50] = 1.0
    many[:, 70:72] = 0.05  # faint relevance on every row
    rng = np.random.default_rng(0)
    many += rng.normal(0, 1e-9, many.shape) * (rng.random(many.shape) < 0.5)
    kept, info = N.filter_seqlets(many, call_seqlets(many), fdr=FDR)
    assert np.isfinite(info["threshold_pos"]) and 0 < info["scale_pos"] < np.inf
    assert set(kept["example_idx"]) == {0, 10}
    assert (kept["start"] < 50).all() and (kept["end"] > 40).all()
    null = N.fit_null(np.zeros(50))
    assert null.share_pos == 0 and null.scale_pos == np.inf
    assert N.bh_threshold(np.zeros(50), null) == np.inf


def test_deterministic_blockwise_and_fdr_one_is_off():
    s = _null_draws(2, True)
    s[::7, 30:40] += 4.0
    seqlets = call_seqlets(s)
    a, ia = N.filter_seqlets(s, seqlets, fdr=FDR)
    four = np.zeros((len(s), 4, s.shape[1]))
    four[:, 2] = s  # one channel holds the score: projecting gives s exactly
    b, ib = N.filter_seqlets(ProjectedRows(four, 13), seqlets, fdr=FDR)
    assert a.equals(b) and ia == ib
    # a sampled fit (every k-th window) gives nearly the same threshold
    sub = N.fit_null(N.sample(s, cap=5000))
    assert sub.scale_pos == pytest.approx(ia["scale_pos"], rel=0.1)
    off, info = N.filter_seqlets(s, seqlets, fdr=1)
    assert len(off) == len(seqlets) and info["threshold_pos"] == -np.inf
    with pytest.raises(ValueError):
        N.filter_seqlets(s, seqlets, fdr=0)


def test_window_sums():
    s = np.arange(12.0).reshape(2, 6)
    w = N.window_sums(s, 3)
    assert w.shape == (2, 4) and w[0, 0] == 3 and w[1, 3] == 9 + 10 + 11
    assert N.window_sums(s, 10).shape == (2, 1)


# ------------------------------------------------------------------------------------- the shuffled null
L = 120
MOTIF = "TGACTCATGA"
KWARGS = {"n_tasks": 1, "length": L, "filters": 8}
METHODS = (("lrp", {}), ("plrp-lambda", {"p_pos": 0.5}))


def _seqs(n, seed, planted=()):
    """``n`` random sequences of L bp; those in ``planted`` get MOTIF at a seeded position -> (seqs, at)."""
    rng = np.random.default_rng(seed)
    seqs, at = [], {}
    for i in range(n):
        s = list(rng.choice(list("ACGT"), L))
        if i in planted:
            at[i] = int(rng.integers(5, L - len(MOTIF) - 5))
            s[at[i] : at[i] + len(MOTIF)] = MOTIF
        seqs.append("".join(s))
    return seqs, at


def _ohe(seqs):
    idx = np.array([["ACGT".index(b) for b in s] for s in seqs])
    return (idx[:, None, :] == np.arange(4)[None, :, None]).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The demo CNN trained briefly to call MOTIF (half of 400 windows hold it), saved as a state dict."""
    from lrp.demo.model import build_model

    seqs, _ = _seqs(400, 0, planted=set(range(1, 400, 2)))
    x = torch.as_tensor(_ohe(seqs))
    y = torch.as_tensor([i % 2 for i in range(400)], dtype=torch.float32)
    model = build_model(**KWARGS, seed=0)
    fit_first_logit(model, x, y)
    d = tmp_path_factory.mktemp("null")
    torch.save(model.state_dict(), d / "model.pt")
    return d, model


def _projected(model, x, method, params, seed=0):
    """The method's projected relevance (N, L) of ACGT windows ``x``, as ``plrp attribute`` explains them."""
    from lrp.attribution.attribute import attribute_regions

    out = attribute_regions(model, x, method, {"index": 0}, dict(params), seed=seed, progress=False)
    return out["relevance"].sum(1).astype(np.float64)


def _null_of(model, x, method, params, seed=0, n=N.NULL_WINDOWS):
    return _projected(
        model, N.shuffled_windows(x[N.null_rows(len(x), n, seed)], seed), method, params
    )


def test_empirical_p_and_an_all_zero_null():
    null = np.array([0.0, 1.0, 2.0, 3.0])
    p = N.empirical_p(np.array([2.0, 3.5, -1.0]), null)
    assert p == pytest.approx([3 / 5, 1 / 5, 5 / 5])
    assert N.empirical_p(np.array([-2.0]), -null, sign=-1) == pytest.approx([3 / 5])
    # an all-zero null (sparse PLRP on shuffled sequence): every nonzero window has p = 1/(1 + n_null),
    # so the sites, the only nonzero relevance, are called; zeros and residue never are
    scores = np.zeros((50, 100))
    scores[::5, 40:50] = 1.0
    scores[1, 10] = 1e-12  # residue
    kept, info = N.filter_seqlets(
        scores, call_seqlets(scores), fdr=FDR, null_scores=np.zeros((8, 100))
    )
    assert info["null"] == "shuffled" and info["null_zero_share"] == 1.0
    assert set(kept["example_idx"]) == set(range(0, 50, 5)) and np.isfinite(info["threshold_pos"])
    assert info["threshold_neg"] == -np.inf  # no negative window: that side calls nothing
    # a null as strong as the sites: nothing passes
    strong = scores[::5].copy()
    kept, info = N.filter_seqlets(scores, call_seqlets(scores), fdr=FDR, null_scores=strong)
    assert len(kept) == 0 and info["threshold_pos"] == np.inf


@pytest.mark.parametrize("fdr", [FDR, N.FDR])
@pytest.mark.parametrize("trained_weights", [False, True])
def test_shuffled_null_holds_fdr_on_windows_with_nothing_planted(trained, trained_weights, fdr):
    """A real CNN (random or briefly trained weights) on random windows, nothing planted; the null is each
    method's relevance on dinucleotide-shuffled copies of a sample of them: at most about the target share
    of positions is called (at 0.05 and at the workflow's default), for a dense (gradient x input), a
    conservative (lrp) and a pruned method."""
    from lrp.demo.model import build_model

    model = trained[1] if trained_weights else build_model(**KWARGS, seed=3).eval()
    x = _ohe(_seqs(300, 5)[0])
    for method, params in (("gradient-x-input", {}), *METHODS):
        scores = _projected(model, x, method, params)
        null = _null_of(model, x, method, params, seed=1)
        seqlets = call_seqlets(scores)
        kept, info = N.filter_seqlets(scores, seqlets, fdr=fdr, null_scores=null)
        covered = np.zeros(scores.shape, bool)
        for e, s, t in kept[["example_idx", "start", "end"]].itertuples(index=False):
            covered[e, s:t] = True
        assert covered.mean() <= fdr + TOL, (method, covered.mean(), info)
        assert len(kept) < len(seqlets), (method, info)  # the null does reject


def test_shuffled_null_keeps_planted_sites_for_lrp_and_plrp(trained):
    """Windows of which a third hold the motif the model learned: at FDR 0.05 under the shuffled null both
    lrp and plrp-lambda (whose sparse relevance the Laplace null fails on) call most planted sites, and
    few calls fall off them."""
    _, model = trained
    planted = set(range(0, 150, 3))
    seqs, at = _seqs(150, 7, planted=planted)
    x = _ohe(seqs)
    for method, params in METHODS:
        scores = _projected(model, x, method, params)
        null = _null_of(model, x, method, params, seed=2)
        kept, info = N.filter_seqlets(scores, call_seqlets(scores), fdr=FDR, null_scores=null)
        pos = kept[kept["sign"] > 0]
        on = [
            e in at and s < at[e] + len(MOTIF) and t > at[e]
            for e, s, t in pos[["example_idx", "start", "end"]].itertuples(index=False)
        ]
        found = {e for e, o in zip(pos["example_idx"], on) if o}
        assert len(found) >= 0.8 * len(planted), (method, len(found), info)
        assert np.mean(on) >= 0.8, (method, np.mean(on), info)


@pytest.fixture(scope="module")
def project(trained, tmp_path_factory):
    """A genome of 60 windows (a third with the motif), its region table, the model and a motif database."""
    from lrp.motifs.database import write_meme

    d, _ = trained
    seqs, at = _seqs(60, 11, planted=set(range(0, 60, 3)))
    genome = "".join(seqs)
    (d / "g.fa").write_text(
        ">chr1\n" + "\n".join(genome[i : i + 60] for i in range(0, len(genome), 60)) + "\n"
    )
    (d / "regions.bed").write_text(
        "".join(f"chr1\t{i * L}\t{(i + 1) * L}\tw{i}\t0\t.\n" for i in range(60))
    )
    pfm = _ohe([MOTIF])[0].astype(np.float64) * 0.97 + 0.0075
    rng = np.random.default_rng(0)
    motifs = {"AP1": pfm} | {f"decoy{k}": rng.dirichlet(np.ones(4), 10).T for k in range(30)}
    write_meme(d / "db.meme", motifs)
    return d, at


def _model_args(d):
    return ["--model", str(d / "model.pt"), "--builder", "lrp.demo.model:build_model",
            "--builder-kwargs", json.dumps(KWARGS), "--length", str(L)]  # fmt: skip


def test_null_relevance_step_is_reproducible_from_the_seed(project, tmp_path):
    from lrp.steps.cli import main

    d, _ = project
    common = ["null-relevance", "--fasta", str(d / "g.fa"), "--regions", str(d / "regions.bed"),
              *_model_args(d), "--method", "plrp-lambda", "--method-params", '{"p_pos": 0.5}',
              "--null-windows", "24"]  # fmt: skip
    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    assert main([*common, "--seed", "4", "--out", str(a)]) == 0
    assert main([*common, "--seed", "4", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert main([*common, "--seed", "5", "--out", str(c)]) == 0
    za, zc = np.load(a), np.load(c)
    assert za["relevance"].shape == (24, L) and za["relevance"].dtype == np.float32
    assert len(np.unique(za["index"])) == 24 and np.all(np.diff(za["index"]) > 0)
    assert not np.array_equal(za["index"], zc["index"])
    # the shuffled copies are what was explained: the same arrays as the library path
    from lrp.genomics.genome import fetch_one_hot
    from lrp.genomics.regions import read_regions

    x = fetch_one_hot(str(d / "g.fa"), read_regions(str(d / "regions.bed")).iloc[za["index"]], L)
    shuffled = N.shuffled_windows(x, 4)
    assert (shuffled.sum(1) == 1).all() and not np.array_equal(shuffled, x)
    assert np.array_equal(shuffled.sum(2), x.sum(2))  # base composition kept
    # genome mode: the sample comes from the selected windows only
    from lrp.genomics.store import write_selection

    write_selection(tmp_path / "sel.npz", np.arange(30, 50))
    assert main([*common, "--seed", "4", "--selection", str(tmp_path / "sel.npz"),
                 "--out", str(c)]) == 0  # fmt: skip
    assert set(np.load(c)["index"]) <= set(range(30, 50))


def test_call_motifs_with_the_shuffled_null_end_to_end(project, tmp_path):
    """plrp attribute -> gather -> null-relevance -> call-motifs --null-relevance at FDR 0.05: the planted
    sites are called and labelled; without the null file the command fails with a fix; a null file of
    other windows' length is refused."""
    from lrp.motifs.calls import read_calls
    from lrp.steps.cli import main

    d, at = project
    genome = ["--fasta", str(d / "g.fa"), "--regions", str(d / "regions.bed")]
    method = [*_model_args(d), "--method", "plrp-lambda", "--method-params", '{"p_pos": 0.5}']
    assert main(["attribute", *genome, *method, "--out", str(tmp_path / "s.npz")]) == 0
    assert main(["gather", "--shards", str(tmp_path / "s.npz"), "--regions", str(d / "regions.bed"),
                 "--out-dir", str(tmp_path / "store")]) == 0  # fmt: skip
    null = tmp_path / "null.npz"
    assert main(["null-relevance", *genome, *method, "--out", str(null)]) == 0
    calls = ["call-motifs", "--relevance", str(tmp_path / "store/relevance.npz"), "--regions",
             str(d / "regions.bed"), "--motif-db", str(d / "db.meme"), "--fasta", str(d / "g.fa"),
             "--out-bed", str(tmp_path / "c.bed"), "--out-tsv", str(tmp_path / "c.tsv"),
             "--threads", "1", "--fdr", str(FDR)]  # fmt: skip
    assert main([*calls, "--null-relevance", str(null)]) == 0
    got = read_calls(tmp_path / "c.tsv")
    pos = got[got["sign"] > 0]
    assert len(pos) and (pos["window_score"] >= pos["null_threshold"]).all()
    hit = [
        r for r, s in at.items()
        if ((pos["start"] < r * L + s + len(MOTIF)) & (pos["end"] > r * L + s)).any()
    ]  # fmt: skip
    assert len(hit) >= 0.8 * len(at)
    assert (pos["name"] == "AP1").sum() >= 0.5 * len(at)
    # no null file at an FDR below 1: a one-line error with the fix, nothing written
    (tmp_path / "c.tsv").unlink()
    assert main(calls) != 0 and not (tmp_path / "c.tsv").exists()
    bad = tmp_path / "bad.npz"
    N.write_null_relevance(bad, np.zeros((3, L + 1)), np.arange(3), 0)
    with pytest.raises(PlrpError, match="rerun plrp null-relevance"):
        N.read_null_relevance(bad, L)
    assert main([*calls, "--null-relevance", str(bad)]) != 0
