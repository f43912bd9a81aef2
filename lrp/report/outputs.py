"""The figures the report's steps write, by stem (each as ``.png`` and ``.svg``).

Standard library only: the workflow reads it when it parses the config, to name the rules' outputs.
"""

#: per method, ``plrp logos`` (:mod:`lrp.report.logos`): the motifs, logos of calls on known sites, example windows
LOGO_FIGURES = ("motifs", "sites", "examples")
#: per genome and model, ``plrp evaluate --compare`` (:mod:`lrp.report.comparison`)
COMPARISON_PLOTS = ("metrics_vs_p", "pr_curves", "layer_sparsity", "faithfulness")
