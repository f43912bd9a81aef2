# Attribution: one job per shard of the region table and method, then the shards gathered in region order
# (genome mode: only the windows select_windows chose; the shards are temp(), deleted once tracks and store exist).


rule attribute:
    input:
        fasta=genome_fasta,
        regions="results/{genome}/{model}/regions.bed",
        model=model_files,
        checked="results/{genome}/{model}/check.json",
        resolved=resolved_params,
    output:
        shard_output("results/{genome}/{model}/{method}/shards/{shard}.npz"),
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
        strands="--reverse-complement" if ATTRIBUTION.get("reverse_complement") else "",
    shell:
        "plrp attribute --fasta {input.fasta} --regions {input.regions}"
        " --shard {wildcards.shard} --shard-size {params.shard_size} {params.model} {params.method}"
        " --batch-size {params.batch_size} --device {params.device} --threads {threads} {params.strands}"
        " --seed {params.seed} --out {output} --log {log} 2>>{log}"


rule choose_params:
    input:
        fasta=genome_fasta,
        regions="results/{genome}/{model}/regions.bed",
        model=model_files,
        checked="results/{genome}/{model}/check.json",
    output:
        "results/{genome}/{model}/{method}/resolved_params.json",
    log:
        "logs/{genome}/{model}/{method}/choose_params.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/choose_params.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: ATTRIBUTION["threads"]
    resources:
        gpu=GPUS_PER_SHARD,
        mem_mb=4000,
        runtime=60,
    params:
        model=model_flags,
        method=method_spec_flags,
        batch_size=ATTRIBUTION["batch_size"],
        device=DEVICE,
        seed=config["seed"],
    shell:
        "plrp choose-params --fasta {input.fasta} --regions {input.regions} {params.model}"
        " {params.method} --batch-size {params.batch_size} --device {params.device} --threads {threads}"
        " --seed {params.seed} --out {output} --log {log} 2>>{log}"


rule select_windows:
    input:
        unpack(select_inputs),
    output:
        SELECTION,
    log:
        "logs/{genome}/{model}/select_windows.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/select_windows.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        options=select_flags,
    shell:
        "plrp select-windows --fasta {input.fasta} --regions {input.regions} {params.options}"
        " --out {output} --log {log} 2>>{log}"


rule gather:
    input:
        shards=shard_files,
        regions="results/{genome}/{model}/regions.bed",
        selection=selection_input,
    output:
        **GATHER_OUTPUTS,
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
        options=gather_flags,
    shell:
        "plrp gather --shards {input.shards} --regions {input.regions} {params.options}"
        " --out-dir {params.out_dir} --log {log} 2>>{log}"
