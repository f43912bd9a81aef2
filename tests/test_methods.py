"""The table of attribution methods, and the public entry point ``lrp.explain``."""

import inspect
import subprocess
import sys

import pytest
import torch
from models import one_hot, sequential_cnn

import lrp
from lrp.core.errors import PlrpError
from lrp.engine import methods
from lrp.engine.methods import (
    DEFAULTS,
    METHODS,
    P_RANGE,
    check_params,
    check_proportion,
    family_of,
    is_pruned,
    layered,
    method_names,
)


def test_the_table():
    assert method_names() == ("lrp", "plrp-lambda", "plrp-m", "gradient-x-input", "deeplift-shap")
    assert {n: family_of(n) for n in method_names()} == {
        "lrp": "lrp",
        "plrp-lambda": "lrp",
        "plrp-m": "lrp",
        "gradient-x-input": "gradient",
        "deeplift-shap": "reference",
    }
    assert [n for n in METHODS if is_pruned(n)] == ["plrp-lambda", "plrp-m"]
    assert [n for n in METHODS if layered(n)] == ["lrp", "plrp-lambda", "plrp-m"]
    assert METHODS["gradient-x-input"].params == ()
    assert METHODS["deeplift-shap"].params == ("n_shuffles",)
    assert METHODS["lrp"].params == ("rules",)
    assert all(m.description for m in METHODS.values())
    with pytest.raises(AttributeError):
        METHODS["lrp"].family = "gradient"  # frozen


def test_defaults_are_filled_in():
    assert check_params("plrp-m") == {
        "p_pos": DEFAULTS["p_pos"],
        "p_neg": DEFAULTS["p_pos"] / 2,
        "p_layers": {},
        "rules": None,
    }
    assert check_params("plrp-lambda", {"p_pos": 0.4})["p_neg"] == 0.2  # p_neg follows p_pos
    assert check_params("plrp-lambda", {"p_pos": 0.4, "p_neg": None})["p_neg"] == 0.2
    assert check_params("deeplift-shap") == {"n_shuffles": 20}
    assert check_params("lrp", {"rules": {"conv": "epsilon"}}) == {"rules": {"conv": "epsilon"}}
    assert check_params("gradient-x-input", {}) == {}
    layers = {"a.*": 0.4, "b": (0.1, 0.3), "c": {"p_pos": 0.2}, "d": {"p_neg": 0.1}}
    assert check_params("plrp-m", {"p_layers": layers})["p_layers"] == {
        "a.*": (0.4, 0.2),
        "b": (0.1, 0.3),
        "c": (0.2, 0.1),
        "d": (0.0, 0.1),
    }


@pytest.mark.parametrize(
    ("method", "params", "match"),
    [
        ("saliency", {}, "unknown method 'saliency'. Fix: choose one of lrp,"),
        ("lrp", {"p_pos": 0.2}, "lrp does not take p_pos. Fix: remove it"),
        ("gradient-x-input", {"rules": {}}, "takes no parameters"),
        ("deeplift-shap", {"p_layers": {}}, "does not take p_layers"),
        ("plrp-lambda", {"p_pos": 1.0}, r"p_pos = 1.0 is outside \[0, 1\). Fix:"),
        ("plrp-lambda", {"p_neg": -0.1}, r"p_neg = -0.1 is outside \[0, 1\)"),
        ("plrp-lambda", {"p_pos": "a lot"}, "p_pos = 'a lot' is not a number"),
        ("plrp-m", {"p_layers": {"x": 1.5}}, r"p_layers\['x'\] = 1.5 is outside"),
        ("plrp-m", {"p_layers": {"x": (0.1, 1)}}, r"p_layers\['x'\]\[1\] = 1 is outside"),
        ("plrp-m", {"p_layers": {"x": {"q": 1}}}, "unknown key"),
        ("plrp-m", {"p_layers": [0.1]}, "not a mapping"),
        ("deeplift-shap", {"n_shuffles": 0}, "n_shuffles = 0 is below 1"),
        ("deeplift-shap", {"n_shuffles": 2.5}, "not a whole number"),
    ],
)
def test_bad_parameters_name_the_fix(method, params, match):
    with pytest.raises(PlrpError, match=match) as err:
        check_params(method, params)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)


def test_one_proportion_check():
    low, high = P_RANGE
    assert check_proportion("p", low) == low
    with pytest.raises(PlrpError, match="outside"):
        check_proportion("p", high)


def test_explain_rejects_a_parameter_its_method_does_not_take():
    x = one_hot(2, 50)
    with pytest.raises(PlrpError, match="gradient-x-input does not take p_pos"):
        lrp.explain(sequential_cnn(), x, method="gradient-x-input", target=0, p_pos=0.3)


def test_lrp_explain_twice_and_its_signature():
    """``lrp.explain`` loads lazily, keeps its real signature and can be called again and again."""
    params = inspect.signature(lrp.explain).parameters
    assert list(params)[:4] == ["model", "x", "method", "target"]
    assert "method" in inspect.signature(lrp.Explainer).parameters
    model, x = sequential_cnn(), one_hot(3, 50, seed=1)
    first = lrp.explain(model, x, method="lrp", target=1)
    second = lrp.explain(model, x, method="lrp", target=1)
    third = lrp.explain(model, x, method="plrp-m", target=1)
    assert torch.equal(first.relevance, second.relevance)
    assert first.relevance.shape == third.relevance.shape == (3, 4, 50)
    assert lrp.explain is lrp.engine.explain.explain


def test_the_engine_imports_no_pipeline_libraries():
    """The engine (``lrp.explain``) is usable without the pipeline's heavy dependencies; the method table
    (read by the workflow at parse time) not even torch."""
    code = (
        "import sys, lrp.engine.methods; assert 'torch' not in sys.modules, 'torch'; "
        "import lrp.engine.explain; "
        "print(','.join(m for m in ('pandas', 'matplotlib', 'pybedtools', 'snakemake') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert methods.__name__ in sys.modules
