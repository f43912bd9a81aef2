# Tracks: the projected relevance per base as a bigWig (overlapping windows: centre crop, see tracks.py); in
# genome mode streamed straight from the shards, optionally with one bigWig of hypothetical scores per base.


rule bigwig:
    input:
        source=bigwig_source,
        regions="results/{genome}/{model}/regions.bed",
        fasta=genome_fasta,
    output:
        **BIGWIG_OUTPUTS,
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
    params:
        hypothetical=bigwig_flags,
    shell:
        "plrp bigwig "
        + BIGWIG_SOURCE
        + " {params.hypothetical} --regions {input.regions}"
        " --fasta {input.fasta} --out {output.bw} --log {log} 2>>{log}"
