# Tracks: the projected relevance per base as a bigWig (overlapping windows: centre crop, see tracks.py).


rule bigwig:
    input:
        relevance="results/{genome}/{model}/{method}/relevance.npz",
        regions="results/{genome}/{model}/regions.bed",
        fasta=genome_fasta,
    output:
        "results/{genome}/{model}/{method}/relevance.bw",
    log:
        "logs/{genome}/{model}/{method}/bigwig.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/bigwig.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "plrp bigwig --relevance {input.relevance} --regions {input.regions} --fasta {input.fasta}"
        " --out {output} --log {log} 2>>{log}"
