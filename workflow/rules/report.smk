# The self-contained HTML report and the genome-browser track hub of one genome and model.


rule report:
    input:
        comparison="results/{genome}/{model}/comparison.tsv",
        comparison_json="results/{genome}/{model}/comparison.json",
        plots=expand(
            "results/{{genome}}/{{model}}/plots/{plot}.png", plot=COMPARISON_PLOTS
        ),
        logos=pair_runs("logos/motifs.png"),
        matches=pair_runs("motif_matches.tsv"),
        motifs=pair_runs("motifs.npz"),
        database=MOTIF_DB,
        tracks=pair_runs("relevance.bw"),
        calls=pair_runs("calls.bb"),
        hub="results/{genome}/{model}/hub/hub.txt",
        fasta=genome_fasta,
        regions="results/{genome}/{model}/regions.bed",
        sites=known_sites,
    output:
        **{
            plot: report(
                f"results/{{genome}}/{{model}}/report_figures/{plot}.png",
                caption=f"../../lrp/report/data/captions/{plot}.rst",
                category="Comparison plots",
                subcategory="{genome} / {model}",
                labels={"plot": plot},
            )
            for plot in COMPARISON_PLOTS
        },
        html=report(
            "results/{genome}/{model}/report.html",
            caption="../report/report.rst",
            category="Report",
            subcategory="{genome} / {model}",
            labels={"file": "report.html"},
        ),
        # the comparison plots as the HTML shows them, each with the HTML's caption
    log:
        "logs/{genome}/{model}/report.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/report.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        logos=report_logos,
        matches=named("results/{genome}/{model}/{method}/motif_matches.tsv"),
        motifs=named("results/{genome}/{model}/{method}/motifs.npz"),
        timings=named("logs/benchmarks/{genome}/{model}/{method}/attribute"),
        figures_dir=subpath(output.metrics_vs_p, parent=True),
        tracks=report_tracks,
        title=lambda w: q(f"plrp: {w.model} on {w.genome}"),
        igv_bigwigs=named("results/{genome}/{model}/{method}/relevance.bw"),
        igv_calls=named("results/{genome}/{model}/{method}/calls.bb"),
        igv_sites=lambda w, input: " ".join(
            f"--igv-known-sites {q(path)}" for path in input.sites
        ),
    shell:
        "plrp report --comparison {input.comparison} --comparison-json {input.comparison_json}"
        " --plots {input.plots} --logos {params.logos} --motif-table {params.matches}"
        " --motifs {params.motifs} --motif-db {input.database} --timings {params.timings}"
        " --figures-dir {params.figures_dir} --tracks {params.tracks} --title {params.title}"
        " --igv-fasta {input.fasta} --igv-regions {input.regions}"
        " --igv-bigwigs {params.igv_bigwigs} --igv-calls {params.igv_calls} {params.igv_sites}"
        " --igv-genome-name {wildcards.genome} --out {output.html} --log {log} 2>>{log}"


rule hub:
    input:
        bigwigs=pair_runs("relevance.bw"),
        bigbeds=pair_runs("calls.bb"),
        fasta=genome_fasta,
        sites=known_sites,
    output:
        hub="results/{genome}/{model}/hub/hub.txt",
        genomes="results/{genome}/{model}/hub/genomes.txt",
        igv="results/{genome}/{model}/hub/igv_session.xml",
    log:
        "logs/{genome}/{model}/hub.log",
    benchmark:
        "logs/benchmarks/{genome}/{model}/hub.tsv"
    conda:
        "../../envs/plrp.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        bigwigs=named("results/{genome}/{model}/{method}/relevance.bw"),
        bigbeds=named("results/{genome}/{model}/{method}/calls.bb"),
        sites=known_sites_flag,
        genome=hub_genome_flags,
        out_dir=subpath(output.hub, parent=True),
    shell:
        "plrp hub --bigwigs {params.bigwigs} --bigbeds {params.bigbeds} --fasta {input.fasta}"
        " {params.sites} {params.genome} --out-dir {params.out_dir} --log {log} 2>>{log}"
