"""Atomic file writes: outputs appear whole or not at all, even when a job is killed.

A write goes to a hidden temporary file beside the output, ``.STEM.~HOST~PID~XXXXXXXX.SUFFIX``, that is
renamed onto the output only when the writing block succeeds (an error removes it). A process killed with
SIGKILL cannot remove its temporary file; the next atomic write of the same output on the same host removes
the temporaries of writers that no longer run (those of live writers, and of other hosts, are left alone).
Nothing reads the temporaries: a rerun never mistakes one for an output.
"""

import contextlib
import os
import re
import socket
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def _prefix(path):
    return f".{path.stem}.~{_HOST}~"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove_stale(path, suffix):
    """Remove temporaries of ``path`` left on this host by writers that were killed."""
    pattern = re.compile(
        re.escape(_prefix(path)) + r"(\d+)~[A-Za-z0-9_]{8}" + re.escape(suffix) + "$"
    )
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.match(entry.name)
            if match and int(match[1]) != os.getpid() and not _alive(int(match[1])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary name keeps the final suffix (``.tmp123.bw``) so libraries that look at it still work. The
    output gets the permissions of a newly created file (``0o666 & ~umask``), not the 0600 of a temporary.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix or ".tmp"
    _remove_stale(path, suffix)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_prefix(path)}{os.getpid()}~", suffix=suffix, dir=path.parent
    )
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file for writing; it replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
