"""A one-node SLURM cluster for the tests, every file of it in one folder: MariaDB, munge, slurmdbd,
slurmctld and slurmd, started as root from Debian's packages (tests/cluster/install.sh installs them).

The node claims 16 CPUs, 128 GB and one GPU (its device file is /dev/null: there is no GPU behind it), more than the
machine has (``SlurmdParameters=config_overrides``), so that the jobs the project's SLURM profile asks for
(4 CPUs and 32 GB per attribution shard, a GPU where the device is CUDA) are accepted and run here. Accounting
goes to slurmdbd, so ``sacct`` and ``sacctmgr`` answer as on a real cluster, with associations enforced: jobs
need the account :data:`ACCOUNT`. Daemons listen on free ports of 127.0.0.1 only.

As a script::

    python tests/cluster/slurm_cluster.py start DIR    # prints `export SLURM_CONF=DIR/slurm.conf`
    python tests/cluster/slurm_cluster.py stop DIR     # stops, by pid, what start started
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLUSTER = "plrptest"
PARTITION = "debug"
ACCOUNT = "plrptest"
CPUS = 16
MEMORY_MB = 128000
DAEMONS = ("mariadbd", "munged", "slurmdbd", "slurmctld", "slurmd")  # in start order
INSTALL = Path(__file__).with_name("install.sh")
# SLURM 22.05's clients reach slurmdbd through munge's default socket whatever AuthInfo says, so munge listens
# there (a munged already answering on it, the machine's own, is used instead of starting one).
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
CONFIGLESS = Path(
    "/run/slurm/conf"
)  # where slurmd, in configless mode, leaves the configuration for jobs


class ClusterError(RuntimeError):
    """The cluster could not be started; the message names the daemon and ends with its log."""


def install():
    """Install the packages where missing; returns None, or why SLURM cannot run here (a skip reason)."""
    if os.geteuid() != 0:
        return "the test SLURM cluster runs its daemons as root, and this is not root"
    done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, check=False)
    return (
        None if done.returncode == 0 else (done.stderr.strip() or "tests/cluster/install.sh failed")
    )


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _munge_answers():
    """munged answers on :data:`MUNGE_SOCKET` (a credential encodes and decodes)."""
    done = subprocess.run(
        f"munge -n -S {MUNGE_SOCKET} | unmunge -S {MUNGE_SOCKET}",
        shell=True, capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


def _sbin(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


def _write(path, text, mode=0o644):
    path.write_text(text)
    path.chmod(mode)


class Cluster:
    """The cluster whose state and configuration live in ``root`` (created if missing)."""

    def __init__(self, root):
        self.root = Path(root).resolve()
        self.conf = self.root / "etc/slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.host = socket.gethostname().split(".")[0]

    # --- configuration ------------------------------------------------------------------------------------
    def _configure(self):
        r = self.root
        for sub in ("etc", "log", "run", "state", "spool", "munge", "mysql"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        (r / "munge").chmod(0o700)
        ctld, slurmd, dbd, mysql = _free_ports(4)
        self.ctld_port, self.mysql_port = ctld, mysql
        key = r / "munge/munge.key"
        if not key.exists():
            _write(key, os.urandom(1024).hex(), 0o400)
        auth = f"AuthType=auth/munge\nAuthInfo=socket={MUNGE_SOCKET}\n"
        _write(
            r / "etc/slurm.conf",
            f"""ClusterName={CLUSTER}
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
{auth}StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={dbd}
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
SlurmctldParameters=enable_configless
MinJobAge=300
KillWait=2
InactiveLimit=0
ReturnToService=2
MailProg=/bin/true
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={MEMORY_MB} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""",
        )
        _write(r / "etc/gres.conf", f"NodeName={self.host} Name=gpu File=/dev/null\n")
        _write(
            r / "etc/slurmdbd.conf",
            f"""{auth}DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={dbd}
SlurmUser=root
PidFile={r}/run/slurmdbd.pid
LogFile={r}/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={mysql}
StorageUser=slurm
StoragePass=plrp
StorageLoc=slurm_acct_db
""",
            0o600,
        )

    # --- processes ------------------------------------------------------------------------------------------
    def _pidfile(self, name):
        return self.root / "run" / f"{name}.started"

    def _spawn(self, name, argv, env=None):
        log = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 - the daemon keeps it
        proc = subprocess.Popen(
            argv,
            env=env or self.env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._pidfile(name).write_text(str(proc.pid))
        return proc

    def _wait(self, name, proc, ready, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if ready():
                return
            time.sleep(0.3)
        logs = [self.root / "log" / f"{name}.out", self.root / "log" / f"{name}.log"]
        tail = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
        state = "exited" if proc.poll() is not None else f"not ready after {timeout} s"
        raise ClusterError(f"{name} {state}:\n{tail}")

    def ok(self, *argv):
        """Run a SLURM client command against this cluster; returns (it succeeded, its stdout)."""
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        return done.returncode == 0, done.stdout

    def run(self, *argv):
        """Run a SLURM client command against this cluster; returns its stdout (raises if it fails)."""
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=True).stdout

    def start(self):
        """Configure and start every daemon, create the account; return once the node is idle."""
        self._configure()
        r = self.root
        sock = r / "run/mysql.sock"
        sql = ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot"]
        if not (r / "mysql/mysql").exists():
            subprocess.run(
                ["mariadb-install-db", "--no-defaults", f"--datadir={r}/mysql", "--user=root",
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                capture_output=True, check=True,
            )  # fmt: skip
        mysqld = self._spawn(
            "mariadbd",
            [_sbin("mariadbd"), "--no-defaults", f"--datadir={r}/mysql", f"--socket={sock}",
             f"--port={self.mysql_port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
             "--user=root", f"--pid-file={r}/run/mariadbd.pid", f"--log-error={r}/log/mariadbd.log",
             "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M"],
        )  # fmt: skip
        self._wait("mariadbd", mysqld, lambda: self.ok(*sql, "-e", "select 1")[0])
        subprocess.run(
            [*sql, "-e", ("CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'plrp';"
             " GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")],
            capture_output=True, check=True,
        )  # fmt: skip
        if not _munge_answers():
            MUNGE_SOCKET.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            munged = self._spawn(
                "munged",
                [_sbin("munged"), "-F", "-f", f"--socket={MUNGE_SOCKET}",
                 f"--key-file={r}/munge/munge.key", f"--pid-file={r}/run/munged.pid",
                 f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge/munged.seed"],
            )  # fmt: skip
            self._wait("munged", munged, _munge_answers)
        dbd = self._spawn("slurmdbd", [_sbin("slurmdbd"), "-D"])
        self._wait("slurmdbd", dbd, lambda: self.ok("sacctmgr", "-n", "list", "cluster")[0])
        for argv in (
            ("add", "cluster", CLUSTER),
            (
                "add",
                "account",
                ACCOUNT,
                f"cluster={CLUSTER}",
                "description=plrp tests",
                "organization=plrp",
            ),
            ("add", "user", "root", f"account={ACCOUNT}", f"cluster={CLUSTER}"),
        ):
            self.ok("sacctmgr", "-i", *argv)  # "already exists" on a restart is fine
        ctld = self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-i"])
        self._wait("slurmctld", ctld, lambda: "UP" in self.ok("scontrol", "ping")[1])
        # configless: slurmd fetches the configuration from slurmctld and puts it in /run/slurm/conf, where the
        # commands in a job find it (the SLURM plugin's job step drops SLURM_CONF before it calls srun)
        slurmd = self._spawn(
            "slurmd",
            [
                _sbin("slurmd"),
                "-D",
                "-N",
                self.host,
                "--conf-server",
                f"127.0.0.1:{self.ctld_port}",
            ],
            env={k: v for k, v in self.env.items() if k != "SLURM_CONF"},
        )
        self._wait(
            "slurmd", slurmd, lambda: self.ok("sinfo", "-h", "-N", "-o", "%T")[1].strip() == "idle"
        )

    def stop(self):
        """Cancel this cluster's jobs left, then stop, by pid and in reverse start order, every daemon
        :meth:`start` started that is still running."""
        if self._pidfile("slurmctld").exists():
            self.ok("scancel", f"--user={os.geteuid()}")
        for name in reversed(DAEMONS):
            path = self._pidfile(name)
            if not path.exists():
                continue
            pid = int(path.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    with contextlib.suppress(ChildProcessError):
                        if os.waitpid(pid, os.WNOHANG)[0]:
                            break
                    os.kill(pid, 0)  # ProcessLookupError once it is gone
                    time.sleep(0.2)
                else:
                    os.kill(pid, signal.SIGKILL)
            path.unlink()
        conf = CONFIGLESS / "slurm.conf"  # slurmd's copy of this cluster's configuration
        if conf.exists() and f"ClusterName={CLUSTER}\n" in conf.read_text():
            # a link into this cluster's spool folder
            CONFIGLESS.unlink() if CONFIGLESS.is_symlink() else shutil.rmtree(CONFIGLESS)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.exit(f"usage: {argv[0]} start|stop DIR")
    cluster = Cluster(argv[2])
    if argv[1] == "start":
        reason = install()
        if reason:
            sys.exit(reason)
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.stop()


if __name__ == "__main__":
    main(sys.argv)
