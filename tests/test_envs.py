"""The rules' conda environments, checked where no conda channel can be reached to solve them.

Every ``envs/*.yaml`` parses as a conda environment, every ``conda:`` directive of the workflow names one that
exists, every environment is used, and the versions the environments pin agree with ``pyproject.toml``.
"""

import re
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
CONDA = re.compile(r"^\s*conda:\s*\n\s*[\"']([^\"']+)[\"']", re.MULTILINE)


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pip_pins(env):
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            yield from (Requirement(p) for p in dep.get("pip", []))


def _conda_pins(env):
    """``{name: SpecifierSet}`` of the conda (not pip) dependencies: ``python=3.11`` -> ``==3.11.*``."""
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name, op, version = re.match(
                r"([A-Za-z0-9_.-]+)\s*(==|>=|<=|=|>|<)?\s*(\S*)", dep
            ).groups()
            if op == "=":
                op, version = "==", f"{version}.*"
            pins[name] = SpecifierSet(f"{op}{version}" if op else "")
    return pins


def _conda_directives():
    for rules in RULE_FILES:
        for match in CONDA.finditer(rules.read_text()):
            yield rules, match.group(1)


def test_there_are_environments_and_rules_use_them():
    assert ENVS, "envs/ holds no environment"
    assert list(_conda_directives()), "no rule has a conda: directive"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_environment_parses(path):
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and env.get("name"), f"{path}: no name"
    assert env.get("channels"), f"{path}: no channels"
    assert isinstance(env.get("dependencies"), list) and env["dependencies"], (
        f"{path}: no dependencies"
    )
    for dep in env["dependencies"]:
        assert isinstance(dep, str) or set(dep) == {"pip"}, f"{path}: odd dependency {dep!r}"
    hook = path.with_suffix(".post-deploy.sh")
    if hook.exists():
        assert hook.read_text().startswith("#!"), f"{hook}: not a script"


def test_every_conda_directive_names_an_environment():
    used = set()
    for rules, target in _conda_directives():
        env = (rules.parent / target).resolve()
        assert env.is_file(), f"{rules.relative_to(ROOT)}: conda: {target} does not exist"
        used.add(env)
    unused = {p.resolve() for p in ENVS} - used
    assert not unused, f"environments no rule uses: {sorted(p.name for p in unused)}"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_pins_agree_with_pyproject(path):
    env = yaml.safe_load(path.read_text())
    project = _pyproject()
    wanted = {
        Requirement(r).name.lower(): Requirement(r) for r in project["project"]["dependencies"]
    }
    build = {
        Requirement(r).name.lower(): Requirement(r) for r in project["build-system"]["requires"]
    }
    for pin in _pip_pins(env):
        assert pin.name.lower() in wanted, (
            f"{path.name}: pip pin {pin} is not a dependency in pyproject"
        )
        versions = [s.version for s in pin.specifier if s.operator == "=="]
        assert versions, f"{path.name}: pip dependency {pin} is not pinned to one version"
        assert wanted[pin.name.lower()].specifier.contains(versions[0]), (
            f"{path.name}: {pin} is outside pyproject's {wanted[pin.name.lower()]}"
        )
    conda = _conda_pins(env)
    python = conda.get("python")
    assert python is not None, f"{path.name}: python is not pinned"
    pinned = next(iter(python)).version.rstrip(".*")
    assert SpecifierSet(project["project"]["requires-python"]).contains(Version(pinned)), (
        f"{path.name}: python {pinned} is outside requires-python {project['project']['requires-python']}"
    )
    for name, spec in conda.items():
        if name in build:
            assert str(spec) == str(build[name].specifier), (
                f"{path.name}: {name}{spec} differs from the build-system's {build[name]}"
            )
