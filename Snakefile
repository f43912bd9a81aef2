# plrp: explain DNA-sequence CNNs with pruned layer-wise relevance propagation.
#
#   snakemake --cores 2 --profile workflow/profiles/local      # the embedded demo (make demo)
#   snakemake --profile workflow/profiles/local --configfile my.yaml --replace-workflow-config
#
# Config keys: config.yaml and workflow/schemas/config.schema.yaml. Outputs: results/{genome}/{model}/{method}/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/config.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/motif_database.smk"
include: "workflow/rules/regions.smk"
include: "workflow/rules/check.smk"
include: "workflow/rules/attribute.smk"
include: "workflow/rules/tracks.smk"
include: "workflow/rules/motifs.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        all_targets(),
