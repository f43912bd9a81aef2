# Attribution: one job per shard of the region table and method, then the shards gathered in region order.


rule attribute:
    input:
        fasta=genome_fasta,
        regions="results/{genome}/{model}/regions.bed",
        model=model_files,
        checked="results/{genome}/{model}/check.json",
    output:
        "results/{genome}/{model}/{method}/shards/{shard}.npz",
    log:
        "logs/{genome}/{model}/{method}/attribute/{shard}.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/attribute/{shard}.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: ATTRIBUTION["threads"]
    resources:
        gpu=GPUS_PER_SHARD,
        mem_mb=4000,
        runtime=60,
    params:
        model=model_flags,
        method=method_flags,
        shard_size=SHARD_SIZE,
        batch_size=ATTRIBUTION["batch_size"],
        device=DEVICE,
        seed=config["seed"],
    shell:
        "plrp attribute --fasta {input.fasta} --regions {input.regions}"
        " --shard {wildcards.shard} --shard-size {params.shard_size} {params.model} {params.method}"
        " --batch-size {params.batch_size} --device {params.device} --threads {threads}"
        " --seed {params.seed} --out {output} --log {log} 2>>{log}"


rule gather:
    input:
        shards=shard_files,
        regions="results/{genome}/{model}/regions.bed",
    output:
        npz="results/{genome}/{model}/{method}/relevance.npz",
        relevance="results/{genome}/{model}/{method}/relevance.npy",
        hypothetical="results/{genome}/{model}/{method}/hypothetical.npy",
        ohe="results/{genome}/{model}/{method}/ohe.npy",
    log:
        "logs/{genome}/{model}/{method}/gather.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/gather.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        out_dir=subpath(output.npz, parent=True),
    shell:
        "plrp gather --shards {input.shards} --regions {input.regions}"
        " --out-dir {params.out_dir} --log {log} 2>>{log}"
