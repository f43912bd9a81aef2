"""Load a model to explain, and check it against the configured input shape.

Supported: a ``torch.export`` program (``.pt2``; no Python code is unpickled), a state dict (``.pt``/``.pth``,
read with ``weights_only=True``) plus a builder ``"module:function"`` or ``"path/file.py:function"``, and a
pickled full module only with ``trust_pickle=True``. TorchScript archives are refused: hooks and the fx graph
walk cannot see inside them.
"""

import importlib
import importlib.util
import logging
import pickle
import sys
import weakref
import zipfile
from pathlib import Path

import torch
from torch import nn

from lrp.core.errors import PlrpError, input_error

log = logging.getLogger("plrp")

_EXPORT_FIX = "export the model with torch.export (torch.export.save -> .pt2) or save a state dict and give a builder"
_MODULES = weakref.WeakKeyDictionary()  # ExportedProgram -> its cached .module()
_SOURCES = weakref.WeakKeyDictionary()  # loaded model -> the file it came from (for error messages)


def model_source(model, default="model"):
    """The file a model was loaded from by :func:`load_model` (for error messages), else ``default``."""
    try:
        return _SOURCES.get(model, default)
    except TypeError:  # not weak-referenceable or not hashable
        return default


def _remember(model, path):
    try:
        _SOURCES[model] = str(path)
    except TypeError:
        pass
    return model


def _zip_names(path):
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def _kind(path):
    """'export', 'torchscript', 'torch-zip' (torch.save), or 'other' from the file's content."""
    names = _zip_names(path)
    if names is None:
        return "other"
    base = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if any(n.startswith(("code/", "constants.pkl")) for n in base) or any(
        "/code/__torch__" in n for n in names
    ):
        return "torchscript"
    if any(
        "serialized_exported_program" in n or n.startswith(("models/", "archive_format"))
        for n in base
    ):
        return "export"
    return "torch-zip"


def resolve_builder(builder, path=None):
    """``"module:function"`` or ``"path/file.py:function"`` -> the callable."""
    where = path or "builder"
    if not isinstance(builder, str) or ":" not in builder:
        raise input_error(
            where,
            f"builder {builder!r}",
            "not 'module:function' or 'file.py:function'",
            "give e.g. builder: lrp.demo.model:build_model",
        )
    target, _, name = builder.rpartition(":")
    try:
        if target.endswith(".py"):
            file = Path(target)
            if not file.is_file():
                raise input_error(
                    where,
                    f"builder {builder}",
                    f"file {file} not found",
                    "give the path of the Python file that builds the model",
                )
            mod_name = f"_plrp_builder_{abs(hash(str(file.resolve())))}"
            spec = importlib.util.spec_from_file_location(mod_name, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except PlrpError:
        raise
    except Exception as err:
        raise input_error(
            where,
            f"builder {builder}",
            f"cannot import {target} ({type(err).__name__}: {err})",
            "make the module importable or give a .py file path",
        ) from err
    fn = getattr(module, name, None)
    if not callable(fn):
        raise input_error(
            where,
            f"builder {builder}",
            f"{target} has no function {name}",
            "name a function that returns the nn.Module",
        )
    return fn


def _state_dict_of(obj):
    """The state dict in a loaded object (plain, or under 'state_dict'/'model_state_dict'), else None."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if (
                isinstance(inner, dict)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                return inner
    return None


def _load_state(path, state, builder, builder_kwargs):
    if builder is None:
        raise input_error(
            path,
            None,
            "holds a state dict (weights only) but no builder was given",
            "set builder: 'module:function' (and builder_kwargs) that builds the model",
        )
    fn = resolve_builder(builder, path)
    try:
        model = fn(**(builder_kwargs or {}))
    except Exception as err:
        raise input_error(
            path,
            f"builder {builder}",
            f"failed with {builder_kwargs or {}} ({type(err).__name__}: {err})",
            "check builder_kwargs",
        ) from err
    if not isinstance(model, nn.Module):
        raise input_error(
            path,
            f"builder {builder}",
            f"returned {type(model).__name__}, not nn.Module",
            "return the torch.nn.Module",
        )
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]

    def some(keys):
        return ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")

    problems = []
    if missing:
        problems.append(f"missing keys: {some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {some(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch: {some(shapes)}")
    if problems:
        raise input_error(
            path,
            f"builder {builder}",
            "state dict does not fit the built model (" + "; ".join(problems) + ")",
            "use the builder and builder_kwargs the weights were trained with",
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_model(path, builder=None, builder_kwargs=None, trust_pickle=False):
    """Load a model file -> ``nn.Module`` (eval mode) or ``torch.export.ExportedProgram``.

    ``.pt2`` program -> ``torch.export.load``; state dict -> ``builder(**builder_kwargs)`` with
    ``load_state_dict(strict=True)``; pickled module -> only with ``trust_pickle``; TorchScript -> PlrpError.
    The model remembers its file (:func:`model_source`), so later errors about it name the file.
    """
    return _remember(_load_model(Path(path), builder, builder_kwargs, trust_pickle), path)


def _load_model(path, builder, builder_kwargs, trust_pickle):
    if not path.exists():
        raise input_error(path, None, "model file not found", "check the model path in the config")
    if not path.is_file():
        raise input_error(path, None, "not a file", "give the model file, not a directory")
    kind = _kind(path)
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if kind == "other" and (not magic or magic == b"PK" or magic[0] != 0x80):
        # neither a zip archive (torch.save, torch.export) nor a legacy pickle: truncated or not a model
        raise input_error(
            path,
            None,
            "corrupt or not a model file (not a torch zip archive or pickle)",
            "give a .pt2 program (torch.export.save) or a state dict saved with torch.save",
        )
    if kind == "torchscript":
        raise input_error(
            path,
            None,
            "is a TorchScript archive (torch.jit); hooks and the graph walk cannot explain it",
            _EXPORT_FIX,
        )
    if kind == "export" or (path.suffix == ".pt2" and kind == "other"):
        try:
            return torch.export.load(str(path))
        except Exception as err:
            raise input_error(
                path,
                None,
                f"cannot be read as a torch.export program ({type(err).__name__}: {_short(err)})",
                "re-export it with torch.export.save",
            ) from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" not in str(err) and "Unsupported global" not in str(err):
            raise input_error(
                path,
                None,
                f"corrupt or not a torch file ({_short(err)})",
                "give a .pt2 program or a state dict saved with torch.save",
            ) from err
        if not trust_pickle:
            raise input_error(
                path,
                None,
                "holds pickled Python objects (a full module), which run code when loaded",
                "set trust_pickle: true if you trust this file, or " + _EXPORT_FIX,
            ) from err
        obj = _load_trusted(path)
    except Exception as err:
        raise input_error(
            path,
            None,
            f"corrupt or not a torch file ({type(err).__name__}: {_short(err)})",
            "give a .pt2 program or a state dict saved with torch.save",
        ) from err
    if isinstance(obj, nn.Module):
        return obj.eval()
    if isinstance(obj, torch.jit.ScriptModule):
        raise input_error(path, None, "is a TorchScript module", _EXPORT_FIX)
    state = _state_dict_of(obj)
    if state is None:
        raise input_error(
            path,
            None,
            f"holds a {type(obj).__name__}, neither a state dict nor a module",
            "save model.state_dict() or export the model with torch.export",
        )
    return _load_state(path, state, builder, builder_kwargs)


def _load_trusted(path):
    log.warning("%s: unpickling a full module (trust_pickle is set)", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise input_error(
            path,
            None,
            f"cannot unpickle ({type(err).__name__}: {_short(err)})",
            "make the model's classes importable, or " + _EXPORT_FIX,
        ) from err


def _short(err, n=200):
    text = " ".join(str(err).split())
    return text if len(text) <= n else text[:n] + "..."


def model_outputs(model, x):
    """Call a module or an exported program on ``x`` (N, C, L) -> its outputs."""
    if isinstance(model, torch.export.ExportedProgram):
        module = _MODULES.get(model)
        if module is None:
            module = _MODULES[model] = model.module()
        return module(x)
    return model(x)


def _expected_input(model):
    """Input shape (tuple with None for dynamic dims) an exported program was made for, else None."""
    if not isinstance(model, torch.export.ExportedProgram):
        return None
    users = set(model.graph_signature.user_inputs)
    for node in model.graph.nodes:
        if node.op == "placeholder" and node.name in users:
            val = node.meta.get("val")
            if val is None:
                return None
            return tuple(
                int(d) if isinstance(d, int) or str(d).isdigit() else None for d in val.shape
            )
    return None


def _first_conv(model):
    if isinstance(model, nn.Module):
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                return name, mod
    return None, None


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return []


def check_model(model, length, channels=4, name=None, target=None):
    """Run a forward pass on 2 random one-hot sequences ``(2, channels, length)``.

    Raises PlrpError (expected vs got) when the model rejects the input shape or returns NaN/inf, or no
    tensor; with ``target`` (see :mod:`lrp.engine.target`), also when the target names no output or an index out
    of range. ``name`` (default: the file the model was loaded from) starts the messages. Returns the output
    shapes (list of tuples).
    """
    name = model_source(model) if name is None else name
    got = (2, channels, length)
    expected = _expected_input(model)
    if expected is not None and len(expected) == 3:
        want = tuple("N" if d is None else d for d in expected)
        if (expected[1] is not None and expected[1] != channels) or (
            expected[2] is not None and expected[2] != length
        ):
            raise input_error(
                name,
                None,
                f"input shape mismatch: the program expects (N, {want[1]}, "
                f"{want[2]}), the config gives (N, {channels}, {length})",
                f"set length: {want[2]} (and the alphabet of {want[1]} letters) or "
                "re-export the model for this length",
            )
    own = getattr(model, "length", None) or getattr(model, "input_length", None)
    if isinstance(own, int) and own != length:
        raise input_error(
            name,
            None,
            f"input length mismatch: the model expects (N, {channels}, {own}) "
            f"(its length attribute), the config gives (N, {channels}, {length})",
            f"set length: {own}",
        )
    conv_name, conv = _first_conv(model)
    if isinstance(conv, (nn.Conv1d, nn.Conv2d)) and conv.in_channels != channels:
        raise input_error(
            name,
            None,
            f"input channel mismatch: first layer {conv_name} expects "
            f"{conv.in_channels} channels, got {channels}",
            "give a DNA model with 4 input channels (one-hot ACGT)",
        )
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, channels, (2, length), generator=gen)
    x = torch.nn.functional.one_hot(idx, channels).permute(0, 2, 1).float()
    try:
        with torch.no_grad():
            out = model_outputs(model, x)
    except Exception as err:
        raise input_error(
            name,
            None,
            f"the model fails on input of shape {got} (expected input "
            f"{'(N, {}, {})'.format(*expected[1:]) if expected else 'unknown'}, got {got}): "
            f"{type(err).__name__}: {_short(err)}",
            "set length to the model's input length and check the model",
        ) from err
    tensors = _tensors(out)
    if not tensors:
        raise input_error(
            name,
            None,
            f"the model returned {type(out).__name__}, not tensors",
            "return a tensor (N, outputs) or a tuple of tensors",
        )
    for k, t in enumerate(tensors):
        if t.ndim == 0 or t.shape[0] != 2:
            raise input_error(
                name,
                f"output {k}",
                f"shape {tuple(t.shape)} has no batch dimension of size 2 for a batch of 2",
                "return outputs of shape (N, ...)",
            )
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise input_error(
                name,
                f"output {k}",
                "NaN or inf for random one-hot input",
                "check the weights (a failed training?) and the input length",
            )
    if target is not None:
        _check_target(out, target, name)
    return [tuple(t.shape) for t in tensors]


def _check_target(out, target, name):
    """The target selects one output and an index inside it (the checks of the explaining itself)."""
    from lrp.engine.target import initial_relevance, normalize_target, select_output

    if isinstance(out, dict):
        outputs, names = list(out.values()), list(out.keys())
    elif isinstance(out, (list, tuple)):
        outputs, names = list(out), list(range(len(out)))
    else:
        outputs, names = [out], [0]
    try:
        target = normalize_target(target)
        initial_relevance(outputs[select_output(outputs, names, target)], target)
    except PlrpError as err:
        raise PlrpError(f"{name}: {err}") from err
