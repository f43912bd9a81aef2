"""One entry point for every attribution method, so the pipeline compares them on equal terms."""

import contextlib

import torch
from tqdm.auto import tqdm

from lrp.core.errors import PlrpError
from lrp.engine.graph import backward, export_program, forward, plan, root_inputs
from lrp.engine.methods import check_params, family_of
from lrp.engine.model_io import model_source
from lrp.engine.rules import at_root, root_point
from lrp.engine.rules import composite as make_composite
from lrp.engine.target import (
    initial_relevance,
    is_signed,
    normalize_target,
    select_output,
    target_scalar,
)


class Explanation(dict):
    """The result of :func:`explain` and :meth:`Explainer.explain_batch`: a dict of CPU tensors with attribute
    access.

    Attributes
    ----------
    relevance : torch.Tensor
        (N, C, L) float32, in units of the explained scalar ``f_t(x)``; zero on absent bases (all-zero
        columns). For the LRP family and DeepLIFT it sums per sequence to ``f_t(x)`` (bias-free models) or
        ``f_t(x) - f_t(reference)``.
    hypothetical : torch.Tensor
        (N, C, L) float32, the factor ``g`` of ``relevance = x * g`` for every base, present or not.
    target : torch.Tensor
        (N,) float32, the explained scalar ``f_t(x)``.
    layers : dict of str to torch.Tensor
        Only with ``return_layers`` (LRP family): ``{layer name: (N, ...) float32 relevance at that linear
        layer's input}``, after pruning.
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
    """A model prepared once for one attribution method (graph, plan, device); explain batch by batch.

    Parameters
    ----------
    model : torch.nn.Module or torch.export.ExportedProgram
        The model; never changed (a copy in eval mode is traced).
    length : int
        L, the input length in bases.
    channels : int
        C, the input channels (4 for one-hot DNA).
    method : str
        A method of :data:`lrp.engine.methods.METHODS`.
    target : None, int or dict
        The explained scalar per sequence (see :mod:`lrp.engine.target`).
    p_pos, p_neg : float, optional
        PLRP only: the shares of positive/negative relevance mass pruned at every hidden layer, in
        ``[0, 1)``; defaults in :data:`lrp.engine.methods.DEFAULTS` (``p_neg = p_pos / 2``).
    p_layers : dict, optional
        PLRP only: ``{layer-name glob: p_pos | (p_pos, p_neg) | {p_pos, p_neg}}`` overrides.
    rules : dict, optional
        LRP family only: the composite (see :func:`lrp.engine.rules.composite`); ``None``: the default
        (z-plus on hidden convolutions, epsilon there for a signed target such as the profile head).
    device : str
        ``auto`` (CUDA when present), ``cpu`` or ``cuda[:i]``.
    n_shuffles : int, optional
        deeplift-shap only: dinucleotide-shuffled references per sequence (default 20).
    seed : int
        Seeds the shuffles of deeplift-shap (the other methods are deterministic).
    batch_size : int
        Sequences per batch of :meth:`explain` (a program exported at a fixed batch uses that one).

    Raises
    ------
    PlrpError
        An unknown method, a parameter the method does not take or out of range, or a model op that the
        method cannot explain (before any work is done).
    """

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
        n_shuffles=None,
        seed=0,
        batch_size=64,
    ):
        given = {
            "p_pos": p_pos,
            "p_neg": p_neg,
            "p_layers": p_layers,
            "rules": rules,
            "n_shuffles": n_shuffles,
        }
        self.params = check_params(method, given)
        self.method, self.family = method, family_of(method)
        self.device = resolve_device(device)
        self.target = normalize_target(target)
        self.model = model
        self.p_pos, self.p_neg = self.params.get("p_pos", 0.0), self.params.get("p_neg", 0.0)
        self.n_shuffles, self.seed = self.params.get("n_shuffles"), seed
        self.program = export_program(model, length, channels)
        self.composite = make_composite(
            self.params.get("rules"), signed_target=is_signed(self.target)
        )
        with _naming(model):
            self.plan = plan(
                self.program,
                self.composite,
                self.target,
                self.p_pos,
                self.p_neg,
                self.params.get("p_layers", {}),
            )
        self.plan.to(self.device)
        self.static_batch = self.plan.static_batch
        self.batch_size = self.static_batch or batch_size

    def explain_batch(self, x, return_layers=False):
        """Explain one batch.

        Parameters
        ----------
        x : torch.Tensor
            (n, C, L) one-hot sequences on any device, n at most the batch size of a program exported at a
            fixed batch (the batch is padded to it).
        return_layers : bool
            LRP family: also return the relevance at every linear layer's input.

        Returns
        -------
        Explanation
            relevance, hypothetical (n, C, L), target (n,) and maybe layers, on the CPU.
        """
        n = x.shape[0]
        x = x.to(self.device, dtype=_dtype(self.program))
        if self.static_batch and n != self.static_batch:
            pad = torch.zeros(
                (self.static_batch - n,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device
            )
            x = torch.cat([x, pad])
        if self.family == "gradient":
            out = self._gradient(x)
        elif self.family == "reference":
            out = self._deeplift(x)
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

    def explain(self, x, return_layers=False, progress=False):
        """Explain ``x`` in batches of :attr:`batch_size` and concatenate the results.

        Parameters
        ----------
        x : torch.Tensor
            (N, C, L) one-hot sequences.
        return_layers : bool
            As in :meth:`explain_batch`.
        progress : bool
            Show a progress bar (one step per batch).

        Returns
        -------
        Explanation
            relevance, hypothetical (N, C, L), target (N,) and maybe layers, on the CPU.
        """
        parts = [
            self.explain_batch(x[start : start + self.batch_size], return_layers)
            for start in tqdm(
                range(0, x.shape[0], self.batch_size),
                disable=not progress,
                desc=self.method,
                unit="batch",
            )
        ]
        out = Explanation()
        for key in parts[0]:
            if key == "layers":
                out[key] = {k: torch.cat([p[key][k] for p in parts]) for k in parts[0][key]}
            else:
                out[key] = torch.cat([p[key] for p in parts])
        return out

    @torch.no_grad()
    def _lrp(self, x, return_layers):
        env = forward(self.plan, x)
        output = env[self.plan.output]
        with _naming(self.model):
            r0, f = initial_relevance(output, self.target)
            _check_finite(output)
        x_root = root_point(x, self.composite.root)
        root = None if x_root is None else root_inputs(self.plan, env, x_root)
        r, c, layers = backward(
            self.plan, env, {self.plan.output: r0}, self.method, return_layers, root
        )
        r, c = at_root(x, r, c, self.composite.root)
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

    def _deeplift(self, x):
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
    n_shuffles=None,
    seed=0,
    progress=False,
):
    """Explain ``f_t(x)`` of ``model`` on one-hot sequences with one attribution method.

    Parameters
    ----------
    model : torch.nn.Module or torch.export.ExportedProgram
        The model; never changed (a copy in eval mode is traced).
    x : torch.Tensor or numpy.ndarray
        (N, C, L) one-hot sequences (C = 4 for DNA; all-zero columns for N).
    method : str
        ``lrp``, ``plrp-lambda``, ``plrp-m``, ``gradient-x-input`` or ``deeplift-shap``
        (:data:`lrp.engine.methods.METHODS`).
    target : None, int or dict
        Which output scalar to explain (see :mod:`lrp.engine.target`).
    p_pos, p_neg, p_layers, rules, n_shuffles, seed, device :
        As for :class:`Explainer`; a parameter the method does not take raises :class:`PlrpError`.
    batch_size : int
        Sequences per batch.
    return_layers : bool
        LRP family: also return the relevance at every linear layer's input.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Explanation
        CPU tensors: relevance and hypothetical (N, C, L) float32 in units of ``f_t``, target (N,) and,
        with ``return_layers``, ``layers``.
    """
    x = torch.as_tensor(x)
    if x.dim() != 3:
        raise PlrpError(f"x must be (N, channels, length); got shape {tuple(x.shape)}")
    explainer = Explainer(
        model,
        x.shape[2],
        x.shape[1],
        method,
        target,
        p_pos,
        p_neg,
        p_layers,
        rules,
        device,
        n_shuffles=n_shuffles,
        seed=seed,
        batch_size=batch_size,
    )
    return explainer.explain(x, return_layers, progress)
