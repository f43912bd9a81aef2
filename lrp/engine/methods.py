"""The attribution methods plrp offers: one table that the engine, the CLI, the workflow's checks and the
config schema take their facts from (names, families, parameters, defaults, the proportion range).

Cheap to import (no torch): the workflow reads it at parse time.

=====================  ===========  =============================================
method                 family       parameters
=====================  ===========  =============================================
``lrp``                lrp          ``rules``
``plrp-lambda``        lrp          ``p_pos``, ``p_neg``, ``p_layers``, ``rules``
``plrp-m``             lrp          ``p_pos``, ``p_neg``, ``p_layers``, ``rules``
``gradient-x-input``   gradient     none
``deeplift-shap``      reference    ``n_shuffles``
=====================  ===========  =============================================

Defaults (:data:`DEFAULTS`): ``p_pos = 0.25``; ``p_neg = p_pos / 2`` (a rule, not a number: it follows the
``p_pos`` in use, also per layer); ``n_shuffles = 20``. ``rules`` unset is the default composite of
:func:`lrp.engine.rules.composite` (which also checks the rules), ``p_layers`` unset overrides nothing.
"""

from dataclasses import dataclass

from lrp.core.errors import PlrpError

FAMILIES = ("lrp", "gradient", "reference")


@dataclass(frozen=True)
class Method:
    """One attribution method.

    name: its config/CLI name; family: ``lrp`` (a backward walk with LRP rules), ``gradient`` (autograd)
    or ``reference`` (against shuffled references); params: the parameter names it accepts;
    description: one line for help texts.
    """

    name: str
    family: str
    params: tuple
    description: str


_PLRP = ("p_pos", "p_neg", "p_layers", "rules")
METHODS = {
    m.name: m
    for m in (
        Method("lrp", "lrp", ("rules",), "layer-wise relevance propagation (no pruning)"),
        Method("plrp-lambda", "lrp", _PLRP, "pruned LRP: pruned relevance dropped, kept rescaled"),
        Method(
            "plrp-m", "lrp", _PLRP, "pruned LRP: linear layers recompute without pruned neurons"
        ),
        Method("gradient-x-input", "gradient", (), "input times the gradient of the target"),
        Method("deeplift-shap", "reference", ("n_shuffles",), "DeepLIFT/SHAP against shuffles"),
    )
}
DEFAULTS = {"p_pos": 0.25, "n_shuffles": 20}  # p_neg: p_pos / 2 (see p_neg_default)
P_RANGE = (0.0, 1.0)  # half-open: low <= p < high
#: the value of ``rules`` and ``p_pos`` that asks for a data-driven choice (:mod:`lrp.engine.auto`)
AUTO = "auto"


def method_names():
    """The method names in table order."""
    return tuple(METHODS)


def get_method(name):
    """The :class:`Method` called ``name``; :class:`PlrpError` naming the choices if there is none."""
    if name not in METHODS:
        raise PlrpError(f"unknown method {name!r}. Fix: choose one of {', '.join(METHODS)}")
    return METHODS[name]


def family_of(name):
    """``lrp``, ``gradient`` or ``reference``."""
    return get_method(name).family


def is_pruned(name):
    """Whether the method prunes relevance (PLRP: it takes ``p_pos``)."""
    return "p_pos" in get_method(name).params


def layered(name):
    """Whether the method walks the layers (the LRP family) and so has relevance at every layer."""
    return family_of(name) == "lrp"


def p_neg_default(p_pos):
    """The default ``p_neg`` for a given ``p_pos``: half of it."""
    return p_pos / 2


def check_proportion(name, value):
    """``value`` as a float in :data:`P_RANGE`; :class:`PlrpError` naming ``name`` otherwise."""
    low, high = P_RANGE
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise PlrpError(
            f"{name} = {value!r} is not a number. Fix: choose a proportion like 0.25"
        ) from None
    if not low <= p < high:
        raise PlrpError(
            f"{name} = {value} is outside [{low:g}, {high:g}). Fix: choose a proportion like 0.25"
        )
    return p


def _p_layer(glob, value):
    """One ``p_layers`` entry (``p``, ``(p_pos, p_neg)`` or ``{p_pos, p_neg}``) as ``(p_pos, p_neg)``."""
    where = f"p_layers[{glob!r}]"
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"p_pos", "p_neg"})
        if unknown:
            raise PlrpError(
                f"{where}: unknown key(s) {', '.join(unknown)}. Fix: use p_pos and p_neg"
            )
        pp = check_proportion(f"{where}.p_pos", value.get("p_pos", 0.0))
        return pp, check_proportion(f"{where}.p_neg", value.get("p_neg", p_neg_default(pp)))
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise PlrpError(f"{where} = {value} is not a pair. Fix: write [p_pos, p_neg]")
        return check_proportion(f"{where}[0]", value[0]), check_proportion(f"{where}[1]", value[1])
    pp = check_proportion(where, value)
    return pp, p_neg_default(pp)


def _n_shuffles(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise PlrpError(f"n_shuffles = {value!r} is not a whole number. Fix: use e.g. 20")
    if value < 1:
        raise PlrpError(f"n_shuffles = {value} is below 1. Fix: use at least 1, e.g. 20")
    return int(value)


def check_params(method, params=None):
    """Check a method's parameters and return them normalised, with the defaults filled in.

    Parameters
    ----------
    method : str
        The method's name (a key of :data:`METHODS`).
    params : dict or None
        Given parameters; a value of ``None`` counts as not given.

    Returns
    -------
    dict
        Exactly the keys of ``METHODS[method].params``: ``p_pos``, ``p_neg`` floats in :data:`P_RANGE`
        (shares of relevance mass), or both ``"auto"``; ``p_layers`` ``{layer-name glob: (p_pos, p_neg)}``; ``rules`` as given
        (``None``: the default composite; ``"auto"``: chosen by :func:`lrp.engine.auto.resolve`); ``n_shuffles`` an int >= 1.

    Raises
    ------
    PlrpError
        An unknown method, a parameter the method does not take, or a value out of range.
    """
    spec = get_method(method)
    given = {k: v for k, v in (params or {}).items() if v is not None}
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        takes = ", ".join(spec.params) if spec.params else "no parameters"
        raise PlrpError(
            f"method {method} does not take {', '.join(unknown)}. Fix: remove it ({method} takes "
            f"{takes})"
        )
    out = {}
    if "p_pos" in spec.params and given.get("p_pos") == AUTO:
        if given.get("p_neg", AUTO) != AUTO:
            raise PlrpError(
                f"p_neg = {given['p_neg']} with p_pos: auto. Fix: remove p_neg (p_pos: auto chooses p "
                "per layer and p_neg follows as p / 2), or give p_pos as a number"
            )
        out["p_pos"] = out["p_neg"] = AUTO
    elif "p_pos" in spec.params:
        out["p_pos"] = check_proportion("p_pos", given.get("p_pos", DEFAULTS["p_pos"]))
        out["p_neg"] = check_proportion("p_neg", given.get("p_neg", p_neg_default(out["p_pos"])))
    if "p_layers" in spec.params:
        layers = given.get("p_layers", {})
        if not isinstance(layers, dict):
            raise PlrpError(
                f"p_layers = {layers!r} is not a mapping. Fix: write {{layer glob: p_pos}}"
            )
        out["p_layers"] = {str(glob): _p_layer(glob, v) for glob, v in layers.items()}
    if "rules" in spec.params:
        out["rules"] = given.get("rules")
    if "n_shuffles" in spec.params:
        out["n_shuffles"] = _n_shuffles(given.get("n_shuffles", DEFAULTS["n_shuffles"]))
    return out


def auto_keys(params):
    """The parameters of a checked ``params`` (:func:`check_params`) left to a data-driven choice:
    a tuple of ``"rules"`` and/or ``"p_pos"``."""
    return tuple(k for k in ("rules", "p_pos") if (params or {}).get(k) == AUTO)
