"""What the workflow knows of the demo model before it is trained: its builder, its heads as explained targets
(:mod:`lrp.engine.target`) and the names of the models that explain them.

Standard library only: the workflow reads it when it parses the config.
"""

#: the builder ``plrp train`` records in model.json, with which deeplift-shap rebuilds the module from the
#: state dict (:class:`lrp.demo.model.DemoBPNet`)
BUILDER = "lrp.demo.model:build_bpnet"

#: head -> target spec: the profile head's ``(N, 1, L)`` logits with bpnet-lite's profile reduction, the
#: counts head's ``(N, 1)`` predicted log(1 + total reads)
TARGETS = {
    "profile": {"output": 0, "index": None, "reduction": "profile"},
    "counts": {"output": 1, "index": 0, "reduction": "none"},
}
#: heads the demo explains when the config does not say (``train.heads``)
DEFAULT_HEADS = ("profile",)


def model_name(head, demo="demo"):
    """The workflow's model name for a head of the demo model: ``demo`` for the profile head, ``demo-counts``
    for the counts head (the results land in ``results/demo/<model name>/``)."""
    return demo if head == "profile" else f"{demo}-{head}"
