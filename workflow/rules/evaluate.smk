# Evaluation: each method against the known sites of its genome, then all methods of a genome and model side
# by side (tables and plots).


rule evaluate:
    input:
        relevance="results/{genome}/{model}/{method}/relevance.npz",
        regions="results/{genome}/{model}/regions.bed",
        calls="results/{genome}/{model}/{method}/calls.tsv",
        sites=known_sites,
        sizes="results/{genome}/{model}/chrom.sizes",
        model=model_files,
        baseline=faith_baseline_inputs,
        resolved=resolved_params,
    output:
        json="results/{genome}/{model}/{method}/metrics.json",
        tsv="results/{genome}/{model}/{method}/metrics.tsv",
    log:
        "logs/{genome}/{model}/{method}/evaluate.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/evaluate.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        sites=known_sites_flag,
        method=evaluate_method_flags,
        model=evaluate_model_flags,
        options=EVALUATION_FLAGS,
        seed=config["seed"],
        baseline=faith_baseline_flag,
    shell:
        "plrp evaluate --relevance {input.relevance} --regions {input.regions}"
        " --calls {input.calls} {params.sites} --chrom-sizes {input.sizes}"
        " {params.method} {params.model} {params.options} {params.baseline}"
        " --seed {params.seed} --threads {threads} --out-json {output.json} --out-tsv {output.tsv}"
        " --log {log} 2>>{log}"


rule faithfulness_baseline:
    input:
        unpack(baseline_inputs),
    output:
        "results/{genome}/{model}/faithfulness_baseline.npz",
    log:
        "logs/{genome}/{model}/faithfulness_baseline.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/faithfulness_baseline.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        options=baseline_flags,
        seed=config["seed"],
    shell:
        "plrp faithfulness-baseline --fasta {input.fasta} --regions {input.regions}"
        " {params.options} --seed {params.seed} --threads {threads} --out {output} --log {log} 2>>{log}"


rule compare:
    input:
        pair_runs("metrics.json"),
    output:
        tsv=report(
            "results/{genome}/{model}/comparison.tsv",
            caption="../report/evaluation.rst",
            category="Evaluation",
            subcategory="{genome} / {model}",
            labels={"table": "methods compared"},
        ),
        json="results/{genome}/{model}/comparison.json",
        plots=multiext(
            "results/{genome}/{model}/plots/",
            *(f"{plot}.{ext}" for plot in COMPARISON_PLOTS for ext in ("png", "svg")),
        ),
    log:
        "logs/{genome}/{model}/compare.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/compare.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        plots_dir=plots_dir,
    shell:
        "plrp evaluate --compare {input} --plots-dir {params.plots_dir}"
        " --out-json {output.json} --out-tsv {output.tsv} --log {log} 2>>{log}"
