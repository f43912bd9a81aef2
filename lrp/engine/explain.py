"""One entry point for every attribution method, so the pipeline compares them on equal terms."""

import contextlib
import logging

import torch
from tqdm.auto import tqdm

from lrp.core.errors import PlrpError
from lrp.engine.graph import backward, export_program, forward, plan
from lrp.engine.model_io import model_source
from lrp.engine.rules import composite as make_composite
from lrp.engine.target import initial_relevance, normalize_target, select_output, target_scalar

METHODS = ("lrp", "plrp-lambda", "plrp-m", "gradient-x-input", "deeplift-shap")
DEFAULT_P_POS = 0.25
log = logging.getLogger("plrp")


class Explanation(dict):
    """Result of :func:`explain` (a dict with attribute access).

    relevance: (N, 4, L) float32, zero on absent bases; hypothetical: (N, 4, L) float32, the factor ``g`` of
    ``relevance = x * g`` for all four bases; target: (N,) the explained scalar ``f_t(x)``; layers: on request,
    ``{layer name: (N, ...) relevance at that layer's input}``.
    """

    __getattr__ = dict.__getitem__


def resolve_device(device="auto"):
    """``auto`` -> CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise PlrpError(
            "device 'cuda' was asked for but CUDA is not available. Fix: set device: auto or cpu"
        )
    return torch.device(device)


class Explainer:
    """A model prepared once for LRP/PLRP (graph, plan, device); call :meth:`explain` batch by batch."""

    def __init__(
        self,
        model,
        length,
        channels=4,
        method="plrp-lambda",
        target=None,
        p_pos=None,
        p_neg=None,
        p_layers=None,
        rules=None,
        device="auto",
    ):
        if method not in METHODS:
            raise PlrpError(f"unknown method {method!r}. Fix: choose one of {', '.join(METHODS)}")
        self.method, self.device = method, resolve_device(device)
        self.target = normalize_target(target)
        self.model = model
        p_pos, p_neg = _proportions(method, p_pos, p_neg)
        self.p_pos, self.p_neg = p_pos, p_neg
        self.program = export_program(model, length, channels)
        with _naming(model):
            self.plan = plan(
                self.program, make_composite(rules), self.target, p_pos, p_neg, _p_layers(p_layers)
            )
        self.plan.to(self.device)
        self.static_batch = self.plan.static_batch

    def explain_batch(self, x, return_layers=False):
        """x: (n, C, L) on any device -> :class:`Explanation` with tensors on the CPU."""
        n = x.shape[0]
        x = x.to(self.device, dtype=_dtype(self.program))
        if self.static_batch and n != self.static_batch:
            pad = torch.zeros(
                (self.static_batch - n,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device
            )
            x = torch.cat([x, pad])
        if self.method in ("gradient-x-input", "deeplift-shap"):
            out = self._gradient(x) if self.method == "gradient-x-input" else self._deeplift(x)
        else:
            out = self._lrp(x, return_layers)
        return Explanation(
            {
                k: (
                    v[:n].cpu()
                    if torch.is_tensor(v)
                    else {name: t[:n].cpu() for name, t in v.items()}
                )
                for k, v in out.items()
            }
        )

    @torch.no_grad()
    def _lrp(self, x, return_layers):
        env = forward(self.plan, x)
        output = env[self.plan.output]
        with _naming(self.model):
            r0, f = initial_relevance(output, self.target)
            _check_finite(output)
        r, c, layers = backward(self.plan, env, {self.plan.output: r0}, self.method, return_layers)
        out = {"relevance": r.float(), "hypothetical": c.float(), "target": f.float()}
        if return_layers:
            out["layers"] = {k: v.float() for k, v in layers.items()}
        return out

    def _gradient(self, x):
        """Autograd through the same forward as the LRP methods (the explained output's part of the graph,
        the same convolutions), so the methods differ only in how they go backwards."""
        leaf = x.detach().requires_grad_()
        with torch.enable_grad():
            output = forward(self.plan, leaf)[self.plan.output]
            with _naming(self.model):
                _check_finite(output)
                f = target_scalar(output, self.target)
            (g,) = torch.autograd.grad(f.sum(), leaf)
        return {
            "relevance": (x * g).float(),
            "hypothetical": g.float(),
            "target": f.detach().float(),
        }

    def _deeplift(self, x, n_shuffles=20, seed=0):
        from tangermeme.deep_lift_shap import deep_lift_shap

        if isinstance(self.model, torch.export.ExportedProgram):
            raise PlrpError(
                "deeplift-shap needs the model's nn.Module with nn.ReLU modules (tangermeme hooks them); a "
                ".pt2 program has none. Fix: give the model as a state dict with its builder"
            )
        if bool((x.sum(1) == 0).any()):
            raise PlrpError(
                "deeplift-shap needs strict one-hot input, but a sequence holds N or another non-ACGT base. "
                "Fix: explain regions without N, or use lrp/plrp methods (N gets zero relevance there)"
            )
        wrapper = _TargetModule(self.model, self.target).to(self.device).eval()
        with torch.no_grad(), _naming(self.model):
            outputs, names = _flatten_outputs(self.model.to(self.device).eval()(x))
            f = target_scalar(outputs[select_output(outputs, names, self.target)], self.target)
            _check_finite(f)
        hyp = deep_lift_shap(
            wrapper,
            x,
            target=0,
            n_shuffles=self.n_shuffles,
            hypothetical=True,
            random_state=self.seed,
            device=str(self.device),
            batch_size=x.shape[0],
            verbose=False,
            warning_threshold=1e9,
        )
        hyp = hyp.to(x.device)
        return {"relevance": (hyp * x).float(), "hypothetical": hyp.float(), "target": f.float()}

    n_shuffles, seed = 20, 0


class _TargetModule(torch.nn.Module):
    """Wrap a model so it returns ``f_t(x)`` as ``(N, 1)``, the shape tangermeme wants."""

    def __init__(self, model, target):
        super().__init__()
        self.model, self.target = model, target

    def forward(self, x):
        outputs, names = _flatten_outputs(self.model(x))
        return target_scalar(outputs[select_output(outputs, names, self.target)], self.target)[
            :, None
        ]


def _flatten_outputs(outputs):
    if isinstance(outputs, dict):
        return list(outputs.values()), list(outputs.keys())
    if isinstance(outputs, (tuple, list)):
        return list(outputs), list(range(len(outputs)))
    return [outputs], [0]


@contextlib.contextmanager
def _naming(model):
    """Errors about the model's outputs (target, NaN) start with the model's file when it is known."""
    try:
        yield
    except PlrpError as err:
        name = model_source(model, None)
        if name is None or str(err).startswith(f"{name}:"):
            raise
        raise PlrpError(f"{name}: {err}") from err


def _check_finite(output):
    if not bool(torch.isfinite(output).all()):
        raise PlrpError(
            "the model's output holds NaN or inf. Fix: check the model's weights and input"
        )


def _dtype(program):
    for value in program.state_dict.values():
        if value.is_floating_point():
            return value.dtype
    return torch.float32


def _proportions(method, p_pos, p_neg):
    if method not in ("plrp-lambda", "plrp-m"):
        return 0.0, 0.0
    p_pos = DEFAULT_P_POS if p_pos is None else float(p_pos)
    p_neg = p_pos / 2 if p_neg is None else float(p_neg)
    for name, p in (("p_pos", p_pos), ("p_neg", p_neg)):
        if not 0 <= p < 1:
            raise PlrpError(f"{name} = {p} is outside [0, 1). Fix: choose a proportion like 0.25")
    return p_pos, p_neg


def _p_layers(p_layers):
    out = {}
    for name, value in (p_layers or {}).items():
        if isinstance(value, (int, float)):
            value = (value, value / 2)
        elif isinstance(value, dict):
            value = (value.get("p_pos", 0.0), value.get("p_neg", value.get("p_pos", 0.0) / 2))
        pp, pn = (float(v) for v in value)
        if not (0 <= pp < 1 and 0 <= pn < 1):
            raise PlrpError(f"p_layers[{name!r}] = {value} is outside [0, 1)")
        out[name] = (pp, pn)
    return out


def explain(
    model,
    x,
    method="plrp-lambda",
    target=None,
    p_pos=None,
    p_neg=None,
    p_layers=None,
    rules=None,
    batch_size=64,
    device="auto",
    return_layers=False,
    n_shuffles=20,
    seed=0,
    progress=False,
):
    """Explain ``f_t(x)`` of ``model`` on one-hot sequences.

    model: an ``nn.Module`` (never changed; a copy in eval mode is traced) or a ``torch.export`` program.
    x: (N, 4, L) one-hot (all-zero columns for N) as a tensor or numpy array.
    method: one of ``lrp``, ``plrp-lambda``, ``plrp-m``, ``gradient-x-input``, ``deeplift-shap``.
    target: which output scalar to explain (see :mod:`lrp.engine.target`). p_pos/p_neg: PLRP's pruned proportions
    of positive/negative relevance mass (defaults 0.25 and p_pos / 2); p_layers: per-layer overrides
    ``{glob: p_pos | (p_pos, p_neg)}``. rules: the LRP composite (see :func:`lrp.engine.rules.composite`).
    Returns an :class:`Explanation` of CPU tensors: relevance and hypothetical (N, 4, L), target (N,) and,
    with ``return_layers``, the relevance at every linear layer's input.
    """
    x = torch.as_tensor(x)
    if x.dim() != 3:
        raise PlrpError(f"x must be (N, channels, length); got shape {tuple(x.shape)}")
    explainer = Explainer(
        model, x.shape[2], x.shape[1], method, target, p_pos, p_neg, p_layers, rules, device
    )
    explainer.n_shuffles, explainer.seed = n_shuffles, seed
    return explain_batches(explainer, x, batch_size, return_layers, progress)


def explain_batches(explainer, x, batch_size=64, return_layers=False, progress=False):
    """Run a prepared :class:`Explainer` over ``x`` (N, C, L) in batches; concatenate the results."""
    batch = explainer.static_batch or batch_size
    parts = []
    for start in tqdm(
        range(0, x.shape[0], batch), disable=not progress, desc=explainer.method, unit="batch"
    ):
        parts.append(explainer.explain_batch(x[start : start + batch], return_layers))
    out = Explanation()
    for key in parts[0]:
        if key == "layers":
            out[key] = {k: torch.cat([p[key][k] for p in parts]) for k in parts[0][key]}
        else:
            out[key] = torch.cat([p[key] for p in parts])
    return out
