"""plrp: pruned layer-wise relevance propagation for DNA-sequence CNNs."""

__version__ = "0.1.0"


def explain(*args, **kwargs):
    """Explain a model's target on one-hot sequences; see :func:`lrp.explain.explain`."""
    from lrp.explain import explain as _explain

    return _explain(*args, **kwargs)
