# The motif database the calls are annotated with (TOMTOM) when motif_database.meme is not given: a JASPAR
# selection (motif_database.jaspar) written as MEME, offline through pyjaspar.


rule jaspar_meme:
    output:
        "resources/motif_database.meme",
    log:
        "logs/resources/jaspar_meme.log",
    benchmark:
        "logs/benchmarks/resources/jaspar_meme.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        release=JASPAR["release"],
        collection=JASPAR["collection"],
        tax_group=JASPAR["tax_group"],
        names=JASPAR_NAMES_FLAG,
    shell:
        "plrp jaspar-meme --release {params.release} --collection {params.collection}"
        " --tax-group {params.tax_group} {params.names} --out {output} --log {log} 2>>{log}"
