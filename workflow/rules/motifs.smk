# From relevance to motifs: seqlet calls at one FDR (the null: each method's relevance on dinucleotide-shuffled
# windows) annotated with the motif database (TOMTOM), motifs built from the seqlets, and logos of motifs, sites
# and example windows.


rule null_relevance:
    input:
        fasta=genome_fasta,
        regions="results/{genome}/{model}/regions.bed",
        model=model_files,
        checked="results/{genome}/{model}/check.json",
        resolved=resolved_params,
        selection=selection_input,
    output:
        NULL_RELEVANCE,
    log:
        "logs/{genome}/{model}/{method}/null_relevance.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/null_relevance.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: ATTRIBUTION["threads"]
    resources:
        gpu=GPUS_PER_SHARD,
        mem_mb=4000,
        runtime=60,
    params:
        windows=null_windows_flags,
        model=model_flags,
        method=method_flags,
        batch_size=ATTRIBUTION["batch_size"],
        device=DEVICE,
        seed=config["seed"],
        strands="--reverse-complement" if ATTRIBUTION.get("reverse_complement") else "",
    shell:
        "plrp null-relevance --fasta {input.fasta} --regions {input.regions} {params.windows}"
        " {params.model} {params.method} --batch-size {params.batch_size} --device {params.device}"
        " --threads {threads} {params.strands} --seed {params.seed} --out {output} --log {log} 2>>{log}"


rule call_motifs:
    input:
        relevance="results/{genome}/{model}/{method}/relevance.npz",
        regions="results/{genome}/{model}/regions.bed",
        fasta=genome_fasta,
        database=MOTIF_DB,
        null=null_relevance_input,
    output:
        bed=report(
            "results/{genome}/{model}/{method}/calls.bed",
            caption="../report/calls.rst",
            category="Motif calls",
            subcategory="{genome} / {model}",
            labels={"method": "{method}", "file": "calls.bed"},
        ),
        tsv="results/{genome}/{model}/{method}/calls.tsv",
        bigbed="results/{genome}/{model}/{method}/calls.bb",
    log:
        "logs/{genome}/{model}/{method}/call_motifs.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/call_motifs.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        options=CALLS_FLAGS,
        null=null_relevance_flag,
    shell:
        "plrp call-motifs --relevance {input.relevance} --regions {input.regions}"
        " --fasta {input.fasta} --motif-db {input.database} {params.options} {params.null}"
        " --track-name {wildcards.method} --threads {threads} --out-bed {output.bed}"
        " --out-tsv {output.tsv} --out-bigbed {output.bigbed} --log {log} 2>>{log}"


rule motifs:
    input:
        relevance="results/{genome}/{model}/{method}/relevance.npz",
        calls="results/{genome}/{model}/{method}/calls.tsv",
        database=MOTIF_DB,
    output:
        meme="results/{genome}/{model}/{method}/motifs.meme",
        matches="results/{genome}/{model}/{method}/motif_matches.tsv",
        npz="results/{genome}/{model}/{method}/motifs.npz",
    log:
        "logs/{genome}/{model}/{method}/motifs.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/motifs.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        options=MOTIFS_FLAGS,
    shell:
        "plrp motifs --relevance {input.relevance} --calls {input.calls}"
        " --motif-db {input.database} {params.options} --threads {threads}"
        " --out-meme {output.meme} --out-tsv {output.matches} --out-npz {output.npz}"
        " --log {log} 2>>{log}"


rule logos:
    input:
        relevance=lambda w: expand(
            "results/{{genome}}/{{model}}/{method}/relevance.npz",
            method=this_method_first(w),
        ),
        calls="results/{genome}/{model}/{method}/calls.tsv",
        motifs="results/{genome}/{model}/{method}/motifs.npz",
        matches="results/{genome}/{model}/{method}/motif_matches.tsv",
        database=MOTIF_DB,
    output:
        motifs=report(
            "results/{genome}/{model}/{method}/logos/motifs.png",
            caption="../report/logos.rst",
            category="Logos",
            subcategory="{genome} / {model}",
            labels={"method": "{method}", "figure": "motifs"},
        ),
        sites=report(
            "results/{genome}/{model}/{method}/logos/sites.png",
            caption="../report/logos.rst",
            category="Logos",
            subcategory="{genome} / {model}",
            labels={"method": "{method}", "figure": "sites"},
        ),
        examples=report(
            "results/{genome}/{model}/{method}/logos/examples.png",
            caption="../report/logos.rst",
            category="Logos",
            subcategory="{genome} / {model}",
            labels={"method": "{method}", "figure": "examples"},
        ),
        svg=multiext(
            "results/{genome}/{model}/{method}/logos/",
            "motifs.svg",
            "sites.svg",
            "examples.svg",
        ),
    log:
        "logs/{genome}/{model}/{method}/logos.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/{method}/logos.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        relevance=named(
            "results/{genome}/{model}/{method}/relevance.npz", this_method_first
        ),
        out_dir=subpath(output.motifs, parent=True),
        options=LOGOS_FLAGS,
    shell:
        "plrp logos --relevance {params.relevance} --calls {input.calls}"
        " --motifs {input.motifs} --motif-table {input.matches} --motif-db {input.database}"
        " {params.options} --out-dir {params.out_dir} --log {log} 2>>{log}"
