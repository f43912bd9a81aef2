"""A battery of bad and unusual inputs, as a new user would give them: configs, FASTA, BED, models, motif
databases and whole runs.

Each bad input is judged on four points: the answer is one line, it names the file and the record, its fix
matches the problem, and nothing is left behind. Accepted inputs (CRLF, lower case, IUPAC codes, track lines,
bgzip) give results identical to the clean input.
"""

import bz2
import gzip
import hashlib
import lzma
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import BIN, snakemake

L = 200
KWARGS = {"n_tasks": 2, "length": L, "filters": 4}
MEME_HEAD = "MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"
ROW = "0.25 0.25 0.25 0.25\n"


def _wrap(seq, width=70):
    return "".join(seq[i : i + width] + "\n" for i in range(0, len(seq), width))


def _motif(mid, name, rows, w=None):
    w = len(rows) if w is None else w
    return (
        f"MOTIF {mid} {name}\nletter-probability matrix: alength= 4 w= {w} nsites= 20 E= 0\n"
        + "".join(rows)
        + "\n"
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The clean inputs: a genome of 2 x 1400 bp, regions, named known sites, a MEME file and models."""
    import torch

    from lrp.demo.model import build_model
    from lrp.demo.train import export
    from lrp.motifs.database import write_meme

    d = tmp_path_factory.mktemp("battery")
    rng = np.random.default_rng(5)
    seqs = {name: "".join(rng.choice(list("ACGT"), 1400)) for name in ("chr1", "chr2")}
    (d / "seqs.txt").write_text("\n".join(seqs.values()))
    (d / "g.fa").write_text("".join(f">{n}\n{_wrap(s)}" for n, s in seqs.items()))
    model = build_model(**KWARGS, seed=0).eval()
    torch.export.save(export(model, L), d / "model.pt2")
    torch.save(model.state_dict(), d / "state.pt")
    torch.save(model, d / "module.pt")
    write_meme(d / "db.meme", {f"TF{i}": rng.dirichlet(np.ones(4), 8).T for i in range(3)})
    (d / "sites.bed").write_text("chr1\t100\t110\tTF0\t0\t+\nchr2\t300\t312\tTF1\t0\t-\n")
    rows = [(c, s, s + L) for c in ("chr1", "chr2") for s in range(0, 1400 - L + 1, 100)]
    (d / "regions.bed").write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in rows))
    return d


def _seqs(base):
    return dict(zip(("chr1", "chr2"), (base / "seqs.txt").read_text().split("\n")))


def _fa(records, width=70):
    return "".join(f">{n}\n{_wrap(s, width)}" for n, s in records.items())


# ----------------------------------------------------------------------------------------- the bad inputs
# name -> (files to write, flags of plrp check that name them, the record named, the fix's words).
# A file value is text, bytes, or a callable of the clean inputs' folder giving either.
def _cases():
    seq = "ACGT" * 350
    two = {"chr1": seq, "chr2": seq}
    clean = _fa(two)
    cases = {
        # FASTA
        "fasta_missing": ({}, {"fasta": "nowhere.fa"}, None, "check the path"),
        "fasta_empty": ({"x.fa": ""}, {"fasta": "x.fa"}, None, "is a FASTA"),
        "fasta_no_header": ({"x.fa": seq + "\n"}, {"fasta": "x.fa"}, None, "'>name' header"),
        "fasta_seq_before_header": (
            {"x.fa": "ACGT\n" + clean},
            {"fasta": "x.fa"},
            "line 1",
            "'>name' header",
        ),
        "fasta_duplicate": (
            {"x.fa": clean + ">chr1 again\nACGT\n"},
            {"fasta": "x.fa"},
            "chr1",
            "unique",
        ),
        "fasta_empty_name": ({"x.fa": ">\nACGT\n" + clean}, {"fasta": "x.fa"}, "record 1", "name"),
        "fasta_long_last_line": (
            {"x.fa": ">chr1\n" + "A" * 60 + "\n" + "C" * 70 + "\n" + clean[clean.index(">chr2") :]},
            {"fasta": "x.fa"},
            "chr1 line 3",
            "seqkit seq -w 60",
        ),
        "fasta_short_middle_line": (
            {"x.fa": ">chr1\n" + "A" * 60 + "\n" + "C" * 50 + "\n" + "G" * 60 + "\n"},
            {"fasta": "x.fa"},
            "chr1 line 3",
            "seqkit seq -w 60",
        ),
        "fasta_plain_gzip": (
            {"x.fa.gz": gzip.compress(clean.encode())},
            {"fasta": "x.fa.gz"},
            None,
            "bgzip",
        ),
        "fasta_bzip2": (
            {"x.fa.bz2": bz2.compress(clean.encode())},
            {"fasta": "x.fa.bz2"},
            None,
            "decompress",
        ),
        "fasta_xz": (
            {"x.fa.xz": lzma.compress(clean.encode())},
            {"fasta": "x.fa.xz"},
            None,
            "decompress",
        ),
        "fasta_stale_index": (
            {"x.fa": clean, "x.fa.fai": "chr1\t1400\t6\t70\t71\nchr2\t1400\t1000\t70\t71\n"},
            {"fasta": "x.fa"},
            "chr2",
            "delete",
        ),
        "fasta_is_a_folder": ({"x.fa/keep": ""}, {"fasta": "x.fa"}, None, "FASTA file"),
        # regions BED
        "bed_two_columns": (
            {"r.bed": "chr1\t0\n"},
            {"bed": "r.bed"},
            "line 1",
            "chrom, start, end",
        ),
        "bed_float_start_line_1": (
            {"r.bed": "chr1\t1e3\t2000\n"},
            {"bed": "r.bed"},
            "line 1",
            "integer",
        ),
        "bed_header_line": (
            {"r.bed": "chrom\tstart\tend\nchr1\t0\t200\n"},
            {"bed": "r.bed"},
            "line 1",
            "column-header",
        ),
        "bed_bad_line_3": (
            {"r.bed": "chr1\t0\t200\nchr1\t200\t400\nchr1\t4O0\t600\n"},
            {"bed": "r.bed"},
            "line 3",
            "integer",
        ),
        "bed_negative": ({"r.bed": "chr1\t-5\t200\n"}, {"bed": "r.bed"}, "line 1", ">= 0"),
        "bed_start_after_end": (
            {"r.bed": "chr1\t300\t200\n"},
            {"bed": "r.bed"},
            "line 1",
            "start < end",
        ),
        "bed_unknown_contig": (
            {"r.bed": "1\t0\t200\n"},
            {"bed": "r.bed"},
            "line 1",
            "'chr1' vs '1'",
        ),
        "bed_past_the_end": (
            {"r.bed": "chr1\t1300\t1500\n"},
            {"bed": "r.bed"},
            "line 1",
            "assembly",
        ),
        "bed_bad_strand": (
            {"r.bed": "chr1\t0\t200\tr\t0\tplus\n"},
            {"bed": "r.bed"},
            "line 1",
            "+, -",
        ),
        "bed_bad_score": (
            {"r.bed": "chr1\t0\t200\tr\thigh\t+\n"},
            {"bed": "r.bed"},
            "line 1",
            "number",
        ),
        "bed_only_track_lines": (
            {"r.bed": "track name=x\n# nothing\n"},
            {"bed": "r.bed"},
            None,
            "non-empty",
        ),
        "bed_missing": ({}, {"bed": "nowhere.bed"}, None, "check the path"),
        "tile_unknown_chrom": ({}, {"chroms": "chrX"}, "chrX", "regions.tile.chroms"),
        # known sites
        "sites_bed3": (
            {"s.bed": "chr1\t100\t110\n"},
            {"known_sites": "s.bed"},
            "line 1",
            "TF name",
        ),
        "sites_dot_name": (
            {"s.bed": "chr1\t100\t110\t.\t0\t+\n"},
            {"known_sites": "s.bed"},
            "line 1",
            "TF name",
        ),
        "sites_bed3_line_2": (
            {"s.bed": "chr1\t100\t110\tTF0\t0\t+\nchr1\t200\t210\n"},
            {"known_sites": "s.bed"},
            "line 2",
            "TF name",
        ),
        "sites_other_assembly": (
            {"s.bed": "chr7\t100\t110\tTF0\t0\t+\n"},
            {"known_sites": "s.bed"},
            "line 1",
            "FASTA's record names",
        ),
        # motif database
        "meme_missing": ({}, {"motif_db": "nowhere.meme"}, None, "check the path"),
        "meme_no_motif": ({"m.meme": MEME_HEAD}, {"motif_db": "m.meme"}, None, "MOTIF"),
        "meme_width_zero": (
            {"m.meme": MEME_HEAD + _motif("M1", "TF1", [], w=0)},
            {"motif_db": "m.meme"},
            "motif M1 (TF1)",
            "set w= to the number of matrix rows",
        ),
        "meme_width_mismatch": (
            {"m.meme": MEME_HEAD + _motif("M1", "TF1", [ROW] * 3, w=5)},
            {"motif_db": "m.meme"},
            "motif M1 (TF1)",
            "make w= match",
        ),
        "meme_counts": (
            {"m.meme": MEME_HEAD + _motif("M1", "TF1", ["10 0 5 5\n"] * 3)},
            {"motif_db": "m.meme"},
            "motif M1 (TF1)",
            "not counts",
        ),
        "meme_three_columns": (
            {"m.meme": MEME_HEAD + _motif("M1", "TF1", ["0.5 0.25 0.25\n"] * 3)},
            {"motif_db": "m.meme"},
            "motif M1 (TF1)",
            "4 probabilities",
        ),
        "meme_protein": (
            {
                "m.meme": MEME_HEAD.replace("ACGT", "ACDEFGHIKLMNPQRSTVWY")
                + _motif("M1", "P", [ROW])
            },
            {"motif_db": "m.meme"},
            None,
            "DNA motif file",
        ),
        "meme_alength": (
            {"m.meme": MEME_HEAD + _motif("M1", "TF1", [ROW]).replace("alength= 4", "alength= 5")},
            {"motif_db": "m.meme"},
            "motif M1 (TF1)",
            "DNA motifs",
        ),
        "meme_binary": (
            {"m.meme": b"\xff\xfe\x00\x81" * 64},
            {"motif_db": "m.meme"},
            None,
            "MEME v4",
        ),
        # model
        "model_missing": ({}, {"model": "nowhere.pt2"}, None, "model path"),
        "model_junk": (
            {"x.pt2": b"this is not a model\n" * 20},
            {"model": "x.pt2"},
            None,
            "state dict",
        ),
        "model_wrong_length": ({}, {"length": "300"}, None, "set length: 200"),
        "model_target_out_of_range": ({}, {"target": '{"index": 7}'}, None, "index"),
        "model_pickle_untrusted": (
            {},
            {"model": lambda d: d / "module.pt"},
            None,
            "trust_pickle",
        ),
        "model_state_without_builder": ({}, {"model": lambda d: d / "state.pt"}, None, "builder"),
        "model_alphabet_not_acgt": ({}, {"alphabet": "ACGA"}, "alphabet", "A, C, G, T"),
    }
    return cases


CASES = _cases()


def _argv(base, case_dir, flags):
    values = {
        "fasta": base / "g.fa",
        "bed": base / "regions.bed",
        "known_sites": base / "sites.bed",
        "motif_db": base / "db.meme",
        "model": base / "model.pt2",
        "length": L,
        "target": '{"index": 0}',
    }
    for key, value in flags.items():
        value = value(base) if callable(value) else value
        values[key] = case_dir / value if isinstance(value, str) and "." in value[-6:] else value
    if "chroms" in flags:
        del values["bed"]
    argv = ["check", "--out", case_dir / "out" / "check.json"]
    for key, value in values.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv, values


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def _plrp_in_process(argv):
    """``plrp ARGV`` in this process (torch is imported once for the whole battery) -> (code, stderr)."""
    import contextlib
    import io
    import logging
    import warnings

    from lrp.steps.cli import main

    stderr = io.StringIO()
    root = logging.getLogger()
    handlers, show = list(root.handlers), warnings.showwarning
    root.handlers.clear()  # main() logs to the stderr it finds, this StringIO
    try:
        with contextlib.redirect_stderr(stderr):
            code = main([str(a) for a in argv])
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        warnings.showwarning = show
    return code, stderr.getvalue()


@pytest.fixture(scope="module")
def answers(base, tmp_path_factory):
    """Every bad input through ``plrp check``: {name: (exit code, stderr, files before, after, inputs)}."""
    out = {}
    for name, (files, flags, _, _) in CASES.items():
        case_dir = tmp_path_factory.mktemp(name)
        for fname, content in files.items():
            path = case_dir / fname
            path.parent.mkdir(parents=True, exist_ok=True)
            if fname.endswith("/keep"):
                continue
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        before = _tree(case_dir)
        argv, values = _argv(base, case_dir, flags)
        code, stderr = _plrp_in_process(argv)
        out[name] = (code, stderr, before, _tree(case_dir), values)
    return out


def test_battery_has_forty_bad_inputs():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(answers, name):
    """One line; it names the file (and the record); the fix matches; nothing is left behind."""
    code, stderr, before, after, values = answers[name]
    _, flags, record, fix = CASES[name]
    assert code == 1, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if "error:" in line or "also:" in line]
    assert len(errors) == 1, stderr[-2000:]
    line = errors[0]
    assert line.startswith("plrp check: error: "), line
    key = next(iter(flags))
    named = {"length": "model", "target": "model", "chroms": "fasta", "alphabet": "alphabet"}.get(
        key, key
    )
    expected_file = Path(str(values[named])).name if named != "alphabet" else "config"
    where, _, rest = line[len("plrp check: error: ") :].partition(": ")
    assert Path(where).name.startswith(expected_file), line  # x.fa or its index x.fa.fai
    if record is not None:
        assert rest.startswith(f"{record}: "), line
    assert ". Fix: " in line and fix in line.split(". Fix: ", 1)[1], line
    # nothing left behind: no report, no temporary; no new file but an index of a readable FASTA
    new = [p for p in after if p not in before]
    assert not [p for p in new if not p.endswith((".fai", ".gzi"))], new
    assert not any(Path(p).name.startswith(".") for p in after), after


# -------------------------------------------------------------------------------------- accepted inputs
def _report(base, tmp_path, **flags):
    argv, _ = _argv(base, tmp_path, flags)
    result = subprocess.run(
        [str(BIN / "plrp"), *map(str, argv)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return (tmp_path / "out" / "check.json").read_text()


def _bgzip(src, dst):
    """BGZF as bgzip writes it (Bio.bgzf is what pyfaidx reads it with)."""
    from Bio import bgzf

    with bgzf.BgzfWriter(str(dst), "wb") as out:
        out.write(Path(src).read_bytes())


def test_accepted_fasta_variants_read_the_same(base, tmp_path):
    """CRLF, lower case, IUPAC codes (as N), another line width and bgzip: the same one-hot windows."""
    from lrp.genomics.genome import fetch_one_hot

    seqs = _seqs(base)
    iupac = {n: s[:50] + "RYKM" + s[54:] for n, s in seqs.items()}
    as_n = {n: s[:50] + "NNNN" + s[54:] for n, s in seqs.items()}
    variants = {
        "crlf.fa": _fa(seqs).replace("\n", "\r\n"),
        "lower.fa": _fa({n: s.lower() for n, s in seqs.items()}),
        "width60.fa": _fa(seqs, 60),
        "iupac.fa": _fa(iupac),
    }
    for name, text in variants.items():
        with open(tmp_path / name, "w", newline="") as handle:
            handle.write(text)
    (tmp_path / "as_n.fa").write_text(_fa(as_n))
    _bgzip(base / "g.fa", tmp_path / "g.fa.gz")
    regions = [(c, s, s + L) for c in ("chr1", "chr2") for s in range(0, 1400 - L + 1, 100)]
    clean = fetch_one_hot(str(base / "g.fa"), regions, L)
    expected = _report(base, tmp_path / "clean")
    for name in ("crlf.fa", "lower.fa", "width60.fa", "g.fa.gz"):
        assert np.array_equal(fetch_one_hot(str(tmp_path / name), regions, L), clean), name
        assert _report(base, tmp_path / f"check_{name}", fasta=str(tmp_path / name)) == expected
    with pytest.warns(UserWarning, match="IUPAC"):
        iu = fetch_one_hot(str(tmp_path / "iupac.fa"), regions, L)
    assert np.array_equal(iu, fetch_one_hot(str(tmp_path / "as_n.fa"), regions, L))


def test_accepted_bed_and_meme_variants_read_the_same(base, tmp_path):
    """Track, browser and comment lines, CRLF, spaces for tabs, a BED12 of sites, a CRLF MEME file."""
    from lrp.genomics.regions import read_bed
    from lrp.motifs.database import read_meme

    sizes = {"chr1": 1400, "chr2": 1400}
    sites = (base / "sites.bed").read_text()
    variants = {
        "track.bed": "track name=sites\nbrowser position chr1:1-100\n# chrom start end\n" + sites,
        "crlf.bed": sites.replace("\n", "\r\n"),
        "spaces.bed": sites.replace("\t", " "),
        "blank.bed": "\n" + sites.replace("\n", "\n\n"),
    }
    clean = read_bed(base / "sites.bed", sizes, "known sites", require_name=True)
    for name, text in variants.items():
        with open(tmp_path / name, "w", newline="") as handle:
            handle.write(text)
        got = read_bed(tmp_path / name, sizes, "known sites", require_name=True)
        assert got.equals(clean), name
    bed12 = "".join(line + "\t100\t110\t0\t1\t10,\t0,\n" for line in sites.splitlines())
    (tmp_path / "bed12.bed").write_text(bed12)
    got = read_bed(tmp_path / "bed12.bed", sizes, "known sites", require_name=True)
    assert got[clean.columns].equals(clean)
    with open(tmp_path / "crlf.meme", "w", newline="") as handle:
        handle.write((base / "db.meme").read_text().replace("\n", "\r\n"))
    a, b = read_meme(base / "db.meme"), read_meme(tmp_path / "crlf.meme")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    expected = _report(base, tmp_path / "clean")
    got = _report(
        base,
        tmp_path / "variants",
        known_sites=str(tmp_path / "track.bed"),
        motif_db=str(tmp_path / "crlf.meme"),
    )
    assert got == expected


# ------------------------------------------------------------------------------------------------ config
BAD_CONFIG = {
    "alphabet_acga": (["models", "m", "alphabet"], "ACGA", "models.m.alphabet", "'ACGT'"),
    "name_with_slash": (["methods", "a/b"], {"method": "lrp"}, "methods", "rename it"),
    "length_text": (["models", "m", "length"], "200bp", "models.m.length", "whole number"),
    "jaspar_release": (
        ["motif_database", "jaspar"],
        {"release": "2026"},
        "motif_database.jaspar.release",
        "'JASPAR2026'",
    ),
    "builder_no_function": (
        ["models", "m", "builder"],
        "arch.py",
        "models.m.builder",
        "arch.py:build_model",
    ),
}


@pytest.fixture(scope="module")
def config_answers(base, tmp_path_factory):
    def config():
        return {
            "genomes": {"g": {"fasta": str(base / "g.fa"), "regions": {"tile": {"step": 100}}}},
            "models": {"m": {"path": str(base / "model.pt2"), "length": L}},
            "methods": {"lrp": {"method": "lrp"}},
            "motif_database": {"meme": str(base / "db.meme")},
        }

    def run(name):
        path, value, _, _ = BAD_CONFIG[name]
        cfg = config()
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        workdir = tmp_path_factory.mktemp(f"config_{name}")
        return snakemake(workdir, "-n", "--cores", "1", config=cfg), workdir

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run, name) for name in BAD_CONFIG}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", sorted(BAD_CONFIG))
def test_bad_config(config_answers, name):
    """One line with the key, phrased for people (no raw schema regex), with an example of a valid value."""
    result, workdir = config_answers[name]
    _, _, key, example = BAD_CONFIG[name]
    assert result.returncode != 0
    lines = [line for line in (result.stderr + result.stdout).splitlines() if "config: " in line]
    assert lines, result.stderr[-2000:]
    line = lines[0]
    assert line.startswith(f"config: {key}: "), line
    assert "Fix: " in line and example in line.split("Fix: ", 1)[1], line
    assert "does not match" not in line and "^" not in line and "see the schema" not in line, line
    assert not (workdir / "results").exists()


# -------------------------------------------------------------------------------------------- whole runs
RUN_FILES = ("check.json", "regions.bed", "lrp/relevance.npy", "lrp/relevance.bw", "lrp/calls.bed")


def test_bgzipped_genome_gives_the_same_bytes(base, tmp_path):
    """A real (tiny) workflow run on the bgzipped genome and on the plain one: the same outputs."""
    _bgzip(base / "g.fa", base / "bg.fa.gz")

    def run(fasta, workdir):
        config = {
            "seed": 0,
            "genomes": {
                "g": {
                    "fasta": str(fasta),
                    "known_sites": str(base / "sites.bed"),
                    "regions": {"tile": {"step": 100}},
                }
            },
            "models": {"m": {"path": str(base / "model.pt2"), "length": L, "target": {"index": 0}}},
            "methods": {"lrp": {"method": "lrp"}},
            "motif_database": {"meme": str(base / "db.meme")},
            "attribution": {"shard_size": 13, "batch_size": 13, "device": "cpu", "threads": 1},
        }
        targets = ["results/g/m/lrp/relevance.bw", "results/g/m/lrp/calls.bed"]
        return snakemake(workdir, "--cores", "1", *targets, config=config, timeout=1200)

    with ThreadPoolExecutor(max_workers=2) as pool:
        plain = pool.submit(run, base / "g.fa", tmp_path / "plain")
        packed = pool.submit(run, base / "bg.fa.gz", tmp_path / "bgzip")
        plain, packed = plain.result(), packed.result()
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert packed.returncode == 0, packed.stderr[-3000:]
    for name in RUN_FILES:
        a = (tmp_path / "plain/results/g/m" / name).read_bytes()
        b = (tmp_path / "bgzip/results/g/m" / name).read_bytes()
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), name
    assert _tree(tmp_path / "plain/results") == _tree(tmp_path / "bgzip/results")
    hidden = [p for p in _tree(tmp_path / "bgzip/results") if "/." in f"/{p}"]
    assert hidden == []
