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


def snakemake(workdir, *args, config=None, timeout=600):
    """Run snakemake on the repository's Snakefile in ``workdir``; ``config`` (a dict) replaces config.yaml.

    Returns the CompletedProcess (stdout and stderr as text). The venv's bin comes first on PATH, so the
    rules find ``plrp`` without activating anything.
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
    return subprocess.run(
        cmd + list(args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def demo_config():
    """The shipped config.yaml as a dict."""
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture
def default_config():
    return demo_config()


def tiny():
    """A tiny demo: a small simulated genome, one short epoch, a few regions, two methods."""
    return {
        "demo": True,
        "seed": 7,
        "simulate": {"chrom_lengths": [60000, 60000, 30000], "density": 0.6},
        "train": {
            "length": 500,
            "epochs": 1,
            "windows_per_epoch": 512,
            "filters": 16,
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
