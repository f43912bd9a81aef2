# The embedded demo: a simulated genome with planted JASPAR motifs and a small CNN trained on it.


rule simulate:
    output:
        fasta=f"{DEMO_DIR}/genome.fa",
        sites=f"{DEMO_DIR}/known_sites.bed",
        motifs=f"{DEMO_DIR}/planted_motifs.meme",
        summary=f"{DEMO_DIR}/simulation.json",
    log:
        "logs/demo/simulate.log",
    benchmark:
        "logs/benchmarks/demo/simulate.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        options=SIMULATE_FLAGS,
        seed=config["seed"],
        out_dir=subpath(output.fasta, parent=True),
    shell:
        "plrp simulate --out-dir {params.out_dir} --seed {params.seed} {params.options}"
        " --log {log} 2>>{log}"


rule train:
    input:
        fasta=rules.simulate.output.fasta,
        sites=rules.simulate.output.sites,
    output:
        program=f"{DEMO_DIR}/model.pt2",
        state=f"{DEMO_DIR}/model_state.pt",
        meta=f"{DEMO_DIR}/model.json",
        summary=report(
            f"{DEMO_DIR}/training.json",
            caption="../report/training.rst",
            category="Demo",
            labels={"file": "training.json"},
        ),
    log:
        "logs/demo/train.log",
    benchmark:
        "logs/benchmarks/demo/train.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        options=TRAIN_FLAGS,
        seed=config["seed"],
        out_dir=subpath(output.program, parent=True),
    shell:
        "plrp train --fasta {input.fasta} --sites {input.sites} --out-dir {params.out_dir}"
        " --seed {params.seed} --threads {threads} {params.options} --log {log} 2>>{log}"
