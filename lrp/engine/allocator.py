"""Keep freed memory for reuse in this process (glibc only; elsewhere a no-op).

The LRP walk allocates many short-lived buffers of a batch's activation size (16 MiB for 64 x 64 x 1,000
float32). glibc serves blocks that large with fresh ``mmap`` pages and unmaps them on free, so every buffer
pays a page fault per 4 KiB page on first touch, more than the arithmetic that fills it. Serving them from the
heap and not trimming it lets the next batch reuse the same pages. The cost: the process keeps its peak heap
until it exits, which suits a batch job such as ``plrp attribute``.
"""

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4


def keep_freed_memory():
    """Tell glibc's malloc to serve large blocks from the heap (no ``mmap``), to grow the heap 64 MiB beyond
    each request, and never to return freed heap to the system. Returns True where it took effect (Linux with
    glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 64 * 2**20))
    done = [mallopt(option, value) for option, value in settings]  # every one, even after a failure
    return all(done)
