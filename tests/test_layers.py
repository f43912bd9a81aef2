"""The package's layers: every import points down, the engine stands alone, the library holds no CLI."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lrp"

# Lowest first. A module may import its own subpackage and any subpackage of a lower rank; subpackages of one
# rank are peers and do not import each other.
RANKS = (
    ("core",),
    ("engine", "genomics"),
    ("attribution", "motifs"),
    ("evaluation",),
    ("report", "demo"),
    ("steps",),
)
RANK = {layer: rank for rank, layers in enumerate(RANKS) for layer in layers}
HEAVY = ("pandas", "matplotlib", "pybedtools", "snakemake")


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(path):
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _lrp_imports(path):
    """(line, imported layer) for every ``lrp.LAYER`` import in ``path``, at any depth of the module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; write lrp.LAYER.module")
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module + "." + a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module
            else []
        )
        for name in names:
            parts = name.split(".")
            if parts[0] == "lrp" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_every_module_sits_in_a_known_layer():
    for path in _modules():
        layer = _layer(path)
        assert layer is None or layer in RANK, (
            f"{path}: subpackage {layer!r} is in no layer of RANKS"
        )
    top_level = [p.name for p in _modules() if _layer(p) is None]
    assert top_level == ["__init__.py"], f"modules outside any layer: {top_level}"


def test_imports_point_down_the_layers():
    wrong = []
    for path in _modules():
        layer = _layer(path)
        if layer is None:
            continue
        for line, target in _lrp_imports(path):
            if target not in RANK:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports unknown lrp.{target}")
            elif target != layer and RANK[target] >= RANK[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {layer} imports lrp.{target}")
    assert not wrong, "wrong-way imports:\n" + "\n".join(wrong)


def test_the_check_catches_a_wrong_way_import(tmp_path, monkeypatch):
    """The rule above must be able to fail: a core module importing the report is reported."""
    fake = tmp_path / "lrp"
    (fake / "core").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "core" / "bad.py").write_text("def f():\n    from lrp.report import html\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError, match="core imports lrp.report"):
        test_imports_point_down_the_layers()


@pytest.mark.parametrize("layer", ["engine", "genomics"])
def test_the_lower_layers_import_without_the_heavy_libraries(layer):
    """Importing every module of the engine (or genomics) pulls in none of pandas, matplotlib, ... ."""
    names = [
        "lrp." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for p in (PACKAGE / layer).glob("*.py")
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    if layer == "engine":
        assert out.strip() == "", f"importing lrp.engine pulled in {out.strip()}"
    else:
        assert not {"matplotlib", "snakemake"} & set(out.strip().split(",")), out


def test_the_library_holds_no_command_line():
    """argparse lives in lrp.steps alone: the layers below are plain functions."""
    offenders = []
    for path in _modules():
        if _layer(path) in (None, "steps"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] == "argparse" for n in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"argparse outside lrp.steps: {offenders}"
