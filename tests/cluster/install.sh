#!/usr/bin/env bash
# Install what tests/cluster/slurm_cluster.py runs (Debian packages, as root), only if something is missing:
# SLURM 22.05 (slurmctld, slurmd, the client commands), slurmdbd with MariaDB for sacct, and munge.
# Exit status 0: everything is there; 1: it is missing and could not be installed (the SLURM tests then skip).
set -euo pipefail
needed=(munged slurmctld slurmd slurmdbd sbatch sacct sacctmgr mariadbd mariadb-install-db mariadb)
missing() {
    local name
    for name in "${needed[@]}"; do
        command -v "$name" >/dev/null || [ -x "/usr/sbin/$name" ] || return 0
    done
    return 1
}
missing || exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "SLURM is missing and this is not root on a Debian-like machine: cannot install it" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends \
    slurm-wlm slurmdbd munge mariadb-server mariadb-client; } >/dev/null \
    || { echo "apt-get could not install slurm-wlm slurmdbd munge mariadb-server" >&2; exit 1; }
! missing || { echo "SLURM packages installed, but a daemon is still missing" >&2; exit 1; }
