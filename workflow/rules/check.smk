# Every input of a genome and model read and validated (FASTA and index, regions and known-sites BEDs, the
# motif database, the model and its alphabet) before anything expensive: every attribution job waits for it.


rule check:
    input:
        fasta=genome_fasta,
        bed=regions_input,
        sites=known_sites,
        motif_db=MOTIF_DB,
        model=model_files,
    output:
        "results/{genome}/{model}/check.json",
    log:
        "logs/{genome}/{model}/check.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/check.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        regions=check_regions_flags,
        sites=known_sites_flag,
        model=model_flags,
    shell:
        "plrp check --fasta {input.fasta} {params.regions} {params.sites}"
        " --motif-db {input.motif_db} {params.model} --out {output} --log {log} 2>>{log}"
