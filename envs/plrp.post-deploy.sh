#!/usr/bin/env bash
# Runs once inside the new conda environment (Snakemake post-deploy script): install the plrp package from the
# checkout the workflow runs from (PLRP_SOURCE is set by workflow/rules/config.smk), with its dependencies;
# torch is already pinned by plrp.yaml.
set -euo pipefail
pip install --no-build-isolation -e "${PLRP_SOURCE:?PLRP_SOURCE is not set: run through the plrp Snakefile}"
