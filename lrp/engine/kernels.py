"""When the numba CPU kernels of :mod:`lrp.engine.prune` and :mod:`lrp.engine.rules` run, and on how many threads.

They take float32/float64 CPU tensors of one dtype; anything else (a GPU, half precision) goes through tensor
ops that give the same result.
"""

import numba
import torch


def usable(*tensors):
    """Whether the CPU kernels can take ``tensors``: all on the CPU, of one float32/float64 dtype and shape."""
    t = tensors[0]
    return (
        t.device.type == "cpu"
        and t.dtype in (torch.float32, torch.float64)
        and all(u.device == t.device and u.dtype == t.dtype and u.shape == t.shape for u in tensors)
    )


def use_torch_threads():
    """Run the kernels on as many threads as torch (a job's ``threads``)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
