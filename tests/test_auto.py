"""``rules: auto`` and ``p_pos: auto``: chosen once by ``plrp choose-params`` (:func:`lrp.engine.auto.resolve`),
reproducible from the seed, and every shard of ``plrp attribute`` explains with that one choice.

A small demo CNN trained here on windows with one planted motif, and a random genome holding planted copies.
"""

import json

import numpy as np
import pytest
import torch
from models import fit_first_logit

from lrp.core.errors import PlrpError
from lrp.engine import auto
from lrp.engine.methods import AUTO, auto_keys, check_params
from lrp.steps.cli import main

L = 120
MOTIF = "TGACTCATGA"
KWARGS = {"n_tasks": 1, "length": L, "filters": 8}


def _one_hot(seq):
    return (np.array(list(seq))[None, :] == np.array(list("ACGT"))[:, None]).astype(np.float32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A genome of 40 windows of L bp, half with the motif planted, and a demo CNN trained on them."""
    from lrp.demo.model import build_model

    d = tmp_path_factory.mktemp("auto")
    rng = np.random.default_rng(0)
    seqs, labels = [], []
    for i in range(400):
        s = list(rng.choice(list("ACGT"), L))
        if i % 2:
            at = int(rng.integers(0, L - len(MOTIF)))
            s[at : at + len(MOTIF)] = MOTIF
        seqs.append("".join(s))
        labels.append(i % 2)
    x = torch.as_tensor(np.stack([_one_hot(s) for s in seqs]))
    y = torch.as_tensor(labels, dtype=torch.float32)
    torch.manual_seed(0)
    model = build_model(**KWARGS, seed=0)
    fit_first_logit(model, x, y)
    torch.save(model.state_dict(), d / "model.pt")
    genome = "".join(seqs[:40])
    (d / "g.fa").write_text(
        ">chr1\n" + "\n".join(genome[i : i + 60] for i in range(0, len(genome), 60))
    )
    (d / "regions.bed").write_text("".join(f"chr1\t{i * L}\t{(i + 1) * L}\n" for i in range(40)))
    return d, model, x[:40]


def _model_args(d):
    return ["--model", str(d / "model.pt"), "--builder", "lrp.demo.model:build_model",
            "--builder-kwargs", json.dumps(KWARGS), "--length", str(L), "--device", "cpu"]  # fmt: skip


def _judge(model):
    from lrp.engine.scoring import target_function
    from lrp.evaluation.selfcheck import deletion_gain

    f = target_function(model)
    return lambda xs, scores: float(np.nanmean(deletion_gain(f, xs, scores, seed=0)))


def test_auto_is_a_checked_value_of_rules_and_p_pos():
    params = check_params("plrp-lambda", {"p_pos": AUTO, "rules": AUTO})
    assert auto_keys(params) == ("rules", "p_pos")
    assert auto_keys(check_params("plrp-lambda", {"p_pos": 0.3})) == ()
    with pytest.raises(PlrpError, match="p_neg"):
        check_params("plrp-lambda", {"p_pos": AUTO, "p_neg": 0.1})
    with pytest.raises(PlrpError, match="p_pos"):
        check_params("plrp-lambda", {"p_pos": "often"})


def test_resolve_is_reproducible_and_leaves_no_auto(data):
    _, model, x = data
    params = check_params("plrp-lambda", {"p_pos": AUTO, "rules": AUTO})
    a, record = auto.resolve(model, x, None, "plrp-lambda", params, _judge(model), n=16, seed=3)
    b, _ = auto.resolve(model, x, None, "plrp-lambda", params, _judge(model), n=16, seed=3)
    assert a == b
    assert auto_keys(a) == ()
    # the choice is the candidate with the best deletion gain, each candidate scored
    scores = record["rules"]["scores"]
    assert set(scores) == set(auto.CANDIDATES)
    assert record["rules"]["choice"] == max(scores, key=scores.get)
    assert a["rules"] == auto.CANDIDATES[record["rules"]["choice"]]
    # p per hidden layer, a proportion, and the layer reading the sequence is never pruned
    assert a["p_pos"] == a["p_neg"] == 0.0
    assert record["p_layers"] and all(0 <= p < 1 for p in record["p_layers"].values())
    assert set(record["p_layers"]) == set(a["p_layers"])
    # a trained model concentrates relevance: the knee prunes something somewhere
    assert max(record["p_layers"].values()) > 0


def test_choose_params_then_every_shard_explains_with_that_choice(data, tmp_path):
    """``plrp choose-params`` writes the choice once; ``plrp attribute --resolved-params`` of two shards
    equals ``plrp attribute`` with the chosen parameters given outright."""
    d, _, _ = data
    given = json.dumps({"p_pos": AUTO, "rules": AUTO})
    choice = tmp_path / "resolved.json"
    common = ["--fasta", str(d / "g.fa"), "--regions", str(d / "regions.bed"), *_model_args(d)]
    argv = ["choose-params", *common, "--method", "plrp-lambda", "--method-params", given]
    assert main([*argv, "--n-windows", "12", "--pool", "30", "--out", str(choice)]) == 0
    first = choice.read_bytes()
    assert main([*argv, "--n-windows", "12", "--pool", "30", "--out", str(choice)]) == 0
    assert choice.read_bytes() == first  # the same seed gives the same bytes
    doc = json.loads(first)
    assert auto_keys(check_params("plrp-lambda", doc["params"])) == ()
    shards = []
    for k in (0, 1):
        out = tmp_path / f"{k}.npz"
        assert main(["attribute", *common, "--method", "plrp-lambda", "--method-params", given,
                     "--resolved-params", str(choice), "--shard", str(k), "--shard-size", "20",
                     "--out", str(out)]) == 0  # fmt: skip
        shards.append(np.load(out)["relevance"])
    outright = tmp_path / "outright.npz"
    assert main(["attribute", *common, "--method", "plrp-lambda",
                 "--method-params", json.dumps(doc["params"]), "--out", str(outright)]) == 0  # fmt: skip
    assert np.array_equal(np.concatenate(shards), np.load(outright)["relevance"])
    # and the choice matters: the default parameters give other relevance
    default = tmp_path / "default.npz"
    assert main(["attribute", *common, "--method", "plrp-lambda", "--out", str(default)]) == 0
    assert not np.array_equal(np.load(default)["relevance"], np.load(outright)["relevance"])


def test_a_bad_choice_file_names_itself(data, tmp_path):
    d, _, _ = data
    bad = tmp_path / "resolved.json"
    bad.write_text("{}")
    argv = ["attribute", "--fasta", str(d / "g.fa"), "--regions", str(d / "regions.bed"),
            *_model_args(d), "--method", "lrp", "--method-params", '{"rules": "auto"}',
            "--resolved-params", str(bad), "--out", str(tmp_path / "s.npz")]  # fmt: skip
    assert main(argv) != 0
    assert not (tmp_path / "s.npz").exists()


def test_the_choice_reaches_the_table_and_the_report():
    """``plrp evaluate``'s columns of a resolved method, and the report's box built from them."""
    import pandas as pd

    from lrp.report.summary import choices
    from lrp.steps.evaluate import composite_fields

    record = {"auto": ["rules", "p_pos"], "rules": {"choice": "conv-epsilon"}}
    record["p_layers"] = {"a": 0.2, "b": 0.4}
    auto_fields = composite_fields({"rules": {"conv": "epsilon"}}, record, family="plrp-lambda")
    assert auto_fields["composite"] == "auto: conv-epsilon"
    assert auto_fields["auto_p"] == pytest.approx(0.3)
    assert composite_fields({}, None, family="lrp")["composite"] == "default"
    assert composite_fields({}, None, family="deeplift-shap")["composite"] == "-"
    table = pd.DataFrame(
        [
            {"method": "plrp-auto", **auto_fields},
            {"method": "lrp", **composite_fields({}, None, family="lrp")},
        ]
    )
    rows = choices(table)
    assert [r["method"] for r in rows] == ["plrp-auto"]
    assert rows[0]["composite"] == "auto: conv-epsilon" and rows[0]["auto_p"] == pytest.approx(0.3)
