"""GPU out-of-memory: a shard that does not fit is explained again with half the batch, down to one window.

:func:`with_smaller_batches` runs the whole shard again at the smaller size, so its output is the same as a
run started at that batch size. :func:`allocate_batch` is called before each batch is explained; it is where
a test (or a user rehearsing a small card) injects an out-of-memory error: with ``PLRP_TEST_OOM=N`` set, a
batch of more than ``N`` windows raises ``torch.cuda.OutOfMemoryError`` as a card too small for it would.
"""

import logging
import os

from lrp.core.errors import PlrpError

log = logging.getLogger("plrp")

#: the environment variable of the injected fault: the most windows a batch may hold
TEST_OOM = "PLRP_TEST_OOM"


def allocate_batch(n):
    """Called with the size ``n`` of each batch before it is explained; raises the injected fault, if any."""
    limit = os.environ.get(TEST_OOM)
    if limit and n > int(limit):
        import torch

        raise torch.cuda.OutOfMemoryError(
            f"CUDA out of memory ({TEST_OOM}={limit}: a batch of {n} windows does not fit)"
        )


def with_smaller_batches(run, batch_size, where="shard"):
    """``run(batch_size)``, again with half the batch (down to 1) while it runs out of GPU memory.

    Parameters
    ----------
    run : callable
        ``run(batch_size) -> result``; it must start from scratch on each call.
    batch_size : int
        The first batch size tried.
    where : str
        What is explained, for the log and the error (e.g. the shard's output file).

    Returns
    -------
    result, batch_size
        The result of the first call that fits and the batch size it ran at.
    """
    import torch

    while True:
        try:
            return run(batch_size), batch_size
        except torch.cuda.OutOfMemoryError as err:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if batch_size <= 1:
                raise PlrpError(
                    f"{where}: the GPU runs out of memory even with one window per batch ({err}). "
                    "Fix: use a GPU with more memory, or attribution.device: cpu"
                ) from err
            smaller = max(1, batch_size // 2)
            log.warning(
                "%s: GPU out of memory at batch size %d; explaining the shard again at batch size %d "
                "(set attribution.batch_size: %d to start there)",
                where,
                batch_size,
                smaller,
                smaller,
            )
            batch_size = smaller
