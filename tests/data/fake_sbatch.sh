#!/usr/bin/env bash
# A stand-in for sbatch in the tests: start the Snakemake job script as its own background process, detached
# from this one, and print a job id (its PID), as `sbatch --parsable` would. Snakemake's cluster-generic
# executor then waits for the job's finished/failed marker files.
set -euo pipefail
jobscript="${*: -1}"
mkdir -p logs/cluster
out="logs/cluster/$(basename "$jobscript").out"
nohup bash "$jobscript" >"$out" 2>&1 </dev/null &
echo "$!"
