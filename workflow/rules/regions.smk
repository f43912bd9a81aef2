# The region table of a genome for a model: a BED re-centred to the model's input length, or tiles of whole
# chromosomes. A checkpoint: the number of attribution shards is known only once it has run.


checkpoint regions:
    input:
        fasta=genome_fasta,
        bed=regions_input,
    output:
        bed="results/{genome}/{model}/regions.bed",
        n_shards="results/{genome}/{model}/n_shards.txt",
        gaps="results/{genome}/{model}/gaps.bed",
        sizes="results/{genome}/{model}/chrom.sizes",
    log:
        "logs/{genome}/{model}/regions.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/regions.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        regions=regions_flags,
        shard_size=SHARD_SIZE,
    shell:
        "plrp regions --fasta {input.fasta} {params.regions} --shard-size {params.shard_size}"
        " --out {output.bed} --n-shards-out {output.n_shards} --gaps-out {output.gaps}"
        " --chrom-sizes-out {output.sizes} --log {log} 2>>{log}"
