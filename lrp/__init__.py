"""plrp: pruned layer-wise relevance propagation for DNA-sequence CNNs.

The package is built in layers; a module imports only from its own layer and the layers below it
(``tests/test_layers.py`` enforces this):

=================  ==========================================================================
``lrp.core``       errors and atomic file writes
``lrp.engine``     the PLRP engine: graph walk, rules, canonizers, pruning, targets, models
``lrp.genomics``   FASTA, BED regions, 2bit, tracks and the relevance store
``lrp.attribution`` a shard of regions explained by one method
``lrp.motifs``     seqlets, motif calls, learned motifs, the motif database
``lrp.evaluation`` metrics and the evaluation against known sites
``lrp.report``     figures, logos, the HTML report, track hubs and IGV
``lrp.demo``       the embedded demo: simulated genome, demo CNN, training
``lrp.steps``      the ``plrp`` command line: argument parsing and calls into the layers
=================  ==========================================================================

The public entry points ``lrp.explain`` and ``lrp.Explainer`` are loaded on first use, so that
``import lrp`` stays cheap.
"""

__version__ = "0.1.0"
__all__ = ["Explainer", "explain"]


def __getattr__(name):
    if name in __all__:
        from lrp.engine import explain as _module

        return getattr(_module, name)
    raise AttributeError(f"module 'lrp' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
