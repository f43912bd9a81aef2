"""Model loading: .pt2 programs, state dict + builder, pickled modules, TorchScript, shape checks."""

import pytest
import torch
from torch import nn

from lrp.core.errors import PlrpError
from lrp.demo.model import build_model
from lrp.demo.train import export
from lrp.engine.model_io import check_model, load_model, model_outputs

LENGTH = 200
KWARGS = {"n_tasks": 3, "length": LENGTH, "filters": 8}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    model = build_model(**KWARGS, seed=0).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    torch.export.save(export(model, LENGTH), d / "model.pt2")
    torch.save(model.state_dict(), d / "state.pt")
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, d / "checkpoint.pth")
    torch.save(model, d / "full.pt")
    torch.jit.save(torch.jit.trace(model, torch.zeros(2, 4, LENGTH)), d / "scripted.pt")
    (d / "builder.py").write_text(
        "from lrp.demo.model import build_model\n\ndef make(**kw):\n    return build_model(**kw)\n"
    )
    return d, model


def x_batch(n=5):
    idx = torch.randint(0, 4, (n, LENGTH), generator=torch.Generator().manual_seed(1))
    return nn.functional.one_hot(idx, 4).permute(0, 2, 1).float()


def test_pt2_and_state_dict_agree(files):
    d, model = files
    program = load_model(d / "model.pt2")
    assert isinstance(program, torch.export.ExportedProgram)
    net = load_model(d / "state.pt", builder="lrp.demo.model:build_model", builder_kwargs=KWARGS)
    assert isinstance(net, nn.Module) and not net.training
    x = x_batch()
    with torch.no_grad():
        want = model(x)
        assert torch.equal(model_outputs(program, x), want)
        assert torch.equal(model_outputs(net, x), want)
        # a dynamic batch dimension
        assert model_outputs(program, x[:1]).shape == (1, 3)
    assert check_model(program, LENGTH) == [(2, 3)]
    assert check_model(net, LENGTH) == [(2, 3)]


def test_builder_from_file_and_checkpoint_dict(files):
    d, model = files
    net = load_model(
        d / "checkpoint.pth", builder=f"{d / 'builder.py'}:make", builder_kwargs=KWARGS
    )
    x = x_batch()
    with torch.no_grad():
        assert torch.equal(net(x), model(x))


def test_state_dict_errors(files):
    d, _ = files
    with pytest.raises(PlrpError, match=r"state dict.*no builder.*Fix: set builder"):
        load_model(d / "state.pt")
    with pytest.raises(PlrpError, match=r"shape mismatch: head.weight \(3, 8\) vs model \(4, 8\)"):
        load_model(
            d / "state.pt",
            builder="lrp.demo.model:build_model",
            builder_kwargs={**KWARGS, "n_tasks": 4},
        )

    def extra(**kw):
        model = build_model(**kw)
        model.extra = nn.Linear(2, 2)
        return model

    import sys
    import types

    mod = types.ModuleType("_plrp_test_builders")
    mod.extra = extra
    sys.modules[mod.__name__] = mod
    with pytest.raises(PlrpError, match=r"missing keys: extra.weight, extra.bias"):
        load_model(d / "state.pt", builder="_plrp_test_builders:extra", builder_kwargs=KWARGS)
    sd = torch.load(d / "state.pt", weights_only=True)
    sd["bogus.weight"] = torch.zeros(1)
    torch.save(sd, d / "extra.pt")
    with pytest.raises(PlrpError, match=r"unexpected keys: bogus.weight"):
        load_model(d / "extra.pt", builder="lrp.demo.model:build_model", builder_kwargs=KWARGS)
    with pytest.raises(PlrpError, match=r"cannot import no_such_module"):
        load_model(d / "state.pt", builder="no_such_module:f")
    with pytest.raises(PlrpError, match=r"has no function nothing"):
        load_model(d / "state.pt", builder="lrp.demo.model:nothing")


def test_pickled_module_needs_trust(files):
    d, model = files
    with pytest.raises(PlrpError) as err:
        load_model(d / "full.pt")
    msg = str(err.value)
    assert (
        msg.startswith(str(d / "full.pt")) and "trust_pickle: true" in msg and "torch.export" in msg
    )
    net = load_model(d / "full.pt", trust_pickle=True)
    x = x_batch()
    with torch.no_grad():
        assert torch.equal(net(x), model(x))


def test_torchscript_refused(files):
    d, _ = files
    with pytest.raises(
        PlrpError,
        match=r"TorchScript.*Fix: export the model with torch.export.*"
        r"state dict and give a builder",
    ):
        load_model(d / "scripted.pt")


def test_missing_and_corrupt(files, tmp_path):
    d, _ = files
    with pytest.raises(PlrpError, match=r"none.pt2: model file not found"):
        load_model(tmp_path / "none.pt2")
    (tmp_path / "junk.pt").write_bytes(b"not a model at all")
    with pytest.raises(PlrpError, match=r"junk.pt: corrupt"):
        load_model(tmp_path / "junk.pt")
    # a truncated program and a truncated state dict
    for name in ("model.pt2", "state.pt"):
        data = (d / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(PlrpError, match=rf"{name}: corrupt") as err:
            load_model(tmp_path / name, builder="lrp.demo.model:build_model", builder_kwargs=KWARGS)
        assert "\n" not in str(err.value)


def test_check_model_shape_and_nan(files):
    d, model = files
    program = load_model(d / "model.pt2")
    with pytest.raises(PlrpError, match=r"expects \(N, 4, 200\), the config gives \(N, 4, 300\)"):
        check_model(program, 300)
    with pytest.raises(PlrpError, match=r"expects \(N, 4, 200\).*gives \(N, 4, 150\)"):
        check_model(load_model(d / "full.pt", trust_pickle=True), 150)
    with pytest.raises(PlrpError, match=r"first layer conv expects 4 channels, got 5"):
        check_model(model, LENGTH, channels=5)

    class Flat(nn.Module):  # a model without a length attribute whose head fixes the length
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 2, 5, padding=2)
            self.fc = nn.Linear(2 * LENGTH, 1)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    check_model(Flat(), LENGTH)
    with pytest.raises(
        PlrpError, match=r"fails on input of shape \(2, 4, 120\).*got \(2, 4, 120\)"
    ):
        check_model(Flat(), 120)
    bad = Flat()
    with torch.no_grad():
        bad.fc.bias.fill_(float("nan"))
    with pytest.raises(PlrpError, match=r"NaN or inf"):
        check_model(bad, LENGTH)
