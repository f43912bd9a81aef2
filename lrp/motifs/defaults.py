"""The motif calls' null and FDR defaults: one owner, standard library only.

Read by :mod:`lrp.motifs.null` (which tests the seqlets), ``plrp call-motifs`` and ``plrp null-relevance``
through it, and by the workflow at parse time (``workflow/rules/common.smk`` decides from them whether
the shuffled null's rule runs), which imports no numpy, numba or torch.
"""

NULLS = ("shuffled", "laplace")  #: the nulls of config ``calls.null_kind``
NULL = "shuffled"  #: the default null: the method's relevance on dinucleotide-shuffled windows
#: the default target FDR of the calls (config ``calls.fdr``; 1 keeps every seqlet and needs no null): 0.2,
#: tfmodisco-lite's seqlet FDR. Measured (benchmarks/quality.py, every setup and head; docs/plrp-method.md):
#: at 0.05 the shuffled null's resolution (one p-value step per null window) and the profile heads' null,
#: which puts each shuffled window's relevance on its strongest chance match, left several setups with no
#: calls at all for some methods; at 0.2 every setup calls, with the precision of the null where the
#: seqlet caller alone calls mostly noise (the demo's counts head: call F1 0.25-0.42 unfiltered).
FDR = 0.2
NULL_WINDOWS = 128  #: windows the shuffled null is drawn from (all when fewer)
WIDTH = 10  #: bp of the windows whose sums are tested
