"""Shared fixtures: running the Snakemake workflow as a subprocess on small configs in temporary directories."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
BIN = Path(sys.executable).parent


def snakemake_command(workdir, *args, config=None):
    """The command line and environment of a snakemake run on the repository's Snakefile in ``workdir``.

    ``config`` (a dict) replaces config.yaml. The venv's bin comes first on PATH, so the rules find ``plrp``
    without activating anything.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(workdir)]
    if config is not None:
        path = workdir / "test_config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        cmd += ["--configfile", str(path), "--replace-workflow-config"]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("SNAKEMAKE_PROFILE", None)
    return cmd + list(args), env


def snakemake(workdir, *args, config=None, timeout=600):
    """Run snakemake (see :func:`snakemake_command`); returns the CompletedProcess, output as text."""
    cmd, env = snakemake_command(workdir, *args, config=config)
    return subprocess.run(
        cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def demo_config():
    """The shipped config.yaml as a dict."""
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture
def default_config():
    return demo_config()


def tiny():
    """A tiny demo: a small simulated genome dense with sites, a short training, a few regions, two methods.

    The training is short: the demo model's predicted profile follows the simulated coverage only roughly.
    """
    return {
        "demo": True,
        "seed": 7,
        "simulate": {"chrom_lengths": [60000, 60000, 30000], "density": 1.5},
        "train": {
            "length": 500,
            "epochs": 4,
            "windows_per_epoch": 4096,
            "filters": 16,
            "lr": 0.01,
            "test_chrom": "chr3",
            "step": 400,
        },
        "methods": {
            "lrp": {"method": "lrp"},
            "plrp-lambda-0.25": {"method": "plrp-lambda", "p_pos": 0.25, "p_neg": 0.125},
        },
        "evaluation": {"faith_max_windows": 16, "faith_steps": 5},
        "attribution": {"shard_size": 40, "batch_size": 16, "device": "cpu", "threads": 1},
    }


@pytest.fixture
def tiny_config():
    return tiny()
