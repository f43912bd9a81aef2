"""Bad input through the user's entry points: the ``plrp`` commands run as subprocesses, and Snakemake for the
config. Each bad input exits non-zero with ONE stderr line ``plrp CMD: error: FILE: RECORD: PROBLEM. Fix: FIX``
and no traceback; no output file (nor a temporary) is left; ``--debug`` (or ``--log``) shows the traceback.

The module-level tests of each reader (tests/test_genome.py, test_regions.py, test_model_io.py) and the config
keys of tests/test_config.py are not repeated here. The commands of all cases run concurrently, once per
module (:func:`runs`): most of their time is importing torch.
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import BIN, snakemake

L = 200
KWARGS = {"n_tasks": 2, "length": L, "filters": 4}
BUILDER = "lrp.demo.model:build_model"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ plrp ")


class Touch:
    """Unpickling this object creates ``path``: a stand-in for code an untrusted pickle would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _fasta(path, records, width=60):
    with open(path, "w") as handle:
        handle.writelines(
            f">{name}\n" + "".join(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
            for name, seq in records.items()
        )
    return path


def _table(path, rows):
    Path(path).write_text("".join(f"{c}\t{s}\t{e}\t{c}:{s}-{e}\t0\t.\n" for c, s, e in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Genomes, region tables and model files (good and bad) in one folder."""
    import torch
    from torch import nn

    from lrp.demo.model import build_model
    from lrp.demo.train import export

    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    seqs = {
        "chr1": "".join(rng.choice(list("ACGT"), 3000)),
        "chr2": "".join(rng.choice(list("ACGT"), 2000)),
    }
    _fasta(d / "g.fa", seqs)
    (d / "g.sizes").write_text("chr1\t3000\nchr2\t2000\n")
    _fasta(d / "dup.fa", {"chr1": "ACGT" * 10, "chr2 second": "ACGT", "chr1 again": "ACGT"})
    (d / "empty.fa").write_bytes(b"")
    (d / "a_folder.fa").mkdir()
    # N, lower case and IUPAC codes in the first window; an invalid letter in the second
    odd = list(seqs["chr1"])
    odd[10:14] = "NNnn"
    odd[20:24] = "acgt"
    odd[30], odd[31] = "R", "y"
    _fasta(d / "odd.fa", {"chr1": "".join(odd), "chr2": seqs["chr2"]})
    odd[250] = "X"
    _fasta(d / "bad_letter.fa", {"chr1": "".join(odd), "chr2": seqs["chr2"]})
    _table(d / "regions.bed", [("chr1", 0, 200), ("chr1", 200, 400), ("chr2", 0, 200)])
    _table(d / "regions300.bed", [("chr1", 0, 300)])

    model = build_model(**KWARGS, seed=0).eval()
    torch.export.save(export(model, L), d / "model.pt2")
    torch.save(model.state_dict(), d / "state.pt")
    nan = {k: v.clone() for k, v in model.state_dict().items()}
    nan["head.bias"].fill_(float("nan"))
    torch.save(nan, d / "nan_state.pt")
    (d / "junk.pt").write_bytes(b"this is not a model\n" * 10)
    program = (d / "model.pt2").read_bytes()
    (d / "truncated.pt2").write_bytes(program[: len(program) // 2])
    (d / "five.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        f"    return nn.Sequential(nn.Conv1d(5, 2, 3), nn.Flatten(), nn.Linear(2 * {L - 2}, 1))\n"
    )
    torch.save(
        nn.Sequential(nn.Conv1d(5, 2, 3), nn.Flatten(), nn.Linear(2 * (L - 2), 1)).state_dict(),
        d / "five_state.pt",
    )
    # Pickles that run code when unpickled: a full module carrying such an object, and a "state dict"
    evil = build_model(**KWARGS, seed=0).eval()
    evil.payload = Touch(d / "marker_module")
    torch.save(evil, d / "evil_module.pt")
    trusted = build_model(**KWARGS, seed=0).eval()
    trusted.payload = Touch(d / "marker_trusted")
    torch.save(trusted, d / "trusted_module.pt")
    torch.save({**model.state_dict(), "extra": Touch(d / "marker_state")}, d / "evil_state.pt")

    (d / "meme.txt").write_text("MEME version 4\n")
    for name, (text, _) in BEDS.items():
        (d / f"{name}.bed").write_text(text)
    return d


# Guard for the loads that must not unpickle code: any torch.load with weights_only=False fails the run.
GUARD = (
    "import sys, torch\n"
    "_load = torch.load\n"
    "def guarded(*a, **k):\n"
    "    assert k.get('weights_only', True) is not False, 'unpickled with weights_only=False'\n"
    "    return _load(*a, **k)\n"
    "torch.load = guarded\n"
    "from lrp.steps.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _attribute(
    d,
    fasta="g.fa",
    model="model.pt2",
    regions="regions.bed",
    length=L,
    method="lrp",
    target='{"index": 0}',
    extra=(),
):
    return [
        "attribute", "--fasta", str(d / fasta), "--regions", str(d / regions), "--model",
        str(d / model), "--length", str(length), "--method", method, "--target", target,
        "--threads", "1", *extra,
    ]  # fmt: skip


STATE = ("--builder", BUILDER, "--builder-kwargs", json.dumps(KWARGS))


def _regions(d, bed=None, fasta="g.fa"):
    args = ["regions", "--fasta", str(d / fasta), "--length", str(L)]
    return args + (["--bed", str(d / bed)] if bed else ["--tile"])


BEDS = {
    # name: (text, words the error line must hold besides the file name)
    # line 1 named, as known sites need (a BED3 line of sites is itself an error)
    "contig": ("chr1\t0\t300\tTF\t0\t+\nchrX\t10\t300\n", ["line 2", "'chrX'", "not in the FASTA"]),
    "past_end": ("chr2\t1900\t2100\n", ["line 1", "past the end of chr2 (2000)"]),
    "negative": ("chr1\t-5\t300\n", ["line 1", "negative"]),
    "start_ge_end": ("chr1\t300\t300\n", ["line 1", "start 300 >= end 300"]),
    "malformed": ("chr1\t100\n", ["line 1", "2 column(s)"]),
    "not_integer": ("track name=x\nchr1\t1e3\t2000\n", ["line 2", "not integers"]),
    "empty": ("", ["no "]),
    "only_headers": ("track name=x\nbrowser position chr1\n# chrom start end\n", ["no "]),
}


def cases(d):
    """``{case: (argv, output the command must not leave, words the error line must hold)}``."""
    out = d / "out"
    c = {
        # FASTA
        "fasta_missing": (_regions(d, fasta="nope.fa"), ["nope.fa", "not found"]),
        "fasta_folder": (_regions(d, fasta="a_folder.fa"), ["a_folder.fa", "not a file"]),
        "fasta_empty": (_regions(d, fasta="empty.fa"), ["empty.fa", "empty"]),
        "fasta_duplicate": (
            _regions(d, fasta="dup.fa"),
            ["dup.fa: chr1:", "duplicate record name"],
        ),
        "fasta_letter": (
            _attribute(d, fasta="bad_letter.fa"),
            ["bad_letter.fa", "chr1:250", "invalid base 'X'"],
        ),
        # model
        "model_missing": (_attribute(d, model="nope.pt2"), ["nope.pt2", "not found"]),
        "model_corrupt": (_attribute(d, model="junk.pt"), ["junk.pt", "corrupt"]),
        "model_length": (
            _attribute(d, regions="regions300.bed", length=300),
            ["model.pt2", "expects (N, 4, 200)", "gives (N, 4, 300)"],
        ),
        "model_channels": (
            _attribute(d, model="five_state.pt", extra=["--builder", f"{d / 'five.py'}:build"]),
            ["five_state.pt", "expects 5 channels, got 4"],
        ),
        "model_nan": (
            _attribute(d, model="nan_state.pt", extra=STATE),
            ["nan_state.pt", "NaN or inf"],
        ),
        "target_index": (
            _attribute(d, target='{"index": 5}'),
            ["model.pt2", "target.index 5", "0..1"],
        ),
        "pickle_module": (
            _attribute(d, model="evil_module.pt"),
            ["evil_module.pt", "trust_pickle: true"],
        ),
        "pickle_state": (
            _attribute(d, model="evil_state.pt", extra=STATE),
            ["evil_state.pt", "trust_pickle: true"],
        ),
        "method_unknown": (
            _attribute(d, method="integrated-gradients"),
            ["unknown method 'integrated-gradients'"],
        ),
    }
    for name, (text, words) in BEDS.items():
        bed = str(d / f"{name}.bed")
        c[f"regions_bed_{name}"] = (_regions(d, bed=f"{name}.bed"), [bed, *words])
        if name in ("contig", "past_end", "start_ge_end", "empty"):
            c[f"known_sites_evaluate_{name}"] = (
                ["evaluate", "--relevance", str(d / "none.npz"), "--regions", str(d / "regions.bed"),
                 "--known-sites", bed, "--chrom-sizes", str(d / "g.sizes")],
                [bed, *words],
            )  # fmt: skip
            c[f"known_sites_hub_{name}"] = (
                ["hub", "--fasta", str(d / "g.fa"), "--known-sites", bed],
                [bed, *words],
            )
    result = {}
    for key, (argv, words) in c.items():
        target = out / key
        if argv[0] == "hub":
            argv = argv + ["--out-dir", str(target)]
        elif argv[0] == "evaluate":
            argv = argv + ["--out-json", f"{target}.json", "--out-tsv", f"{target}.tsv"]
        else:
            argv = argv + ["--out", f"{target}.{'npz' if argv[0] == 'attribute' else 'bed'}"]
        result[key] = (argv, words)
    return result


def _plrp(argv, guard=False):
    cmd = [sys.executable, "-c", GUARD, *argv] if guard else [str(BIN / "plrp"), *argv]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(data):
    """Every case, plus the good runs, run concurrently: {case: CompletedProcess}."""
    jobs = {k: (argv, False) for k, (argv, _) in cases(data).items()}
    out = data / "good"
    good = {
        "good_pt2": _attribute(data) + ["--out", str(out / "pt2.npz")],
        "good_state": _attribute(data, model="state.pt", extra=STATE)
        + ["--out", str(out / "state.npz")],
        "good_odd_letters": _attribute(data, fasta="odd.fa") + ["--out", str(out / "odd.npz")],
        "trusted_pickle": _attribute(data, model="trusted_module.pt")
        + ["--trust-pickle", "--out", str(out / "trusted.npz")],
        "debug": ["--debug", *cases(data)["fasta_letter"][0]],
        "log": [*cases(data)["target_index"][0], "--log", str(out / "plrp.log")],
    }
    jobs.update({k: (argv, k in ("good_pt2", "good_state")) for k, argv in good.items()})
    out.mkdir()
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {k: pool.submit(_plrp, argv, guard) for k, (argv, guard) in jobs.items()}
        return {k: f.result() for k, f in futures.items()}


def _error_line(result):
    """The one error line of a failed command (asserting there is exactly one, last, and no traceback)."""
    lines = result.stderr.splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    # besides the error, only log lines (and progress bars) reach stderr
    others = [
        line
        for line in lines[:-1]
        if line.strip() and not LOG_LINE.match(line) and "batch/s" not in line
    ]
    assert not others, result.stderr
    return errors[0]


def _left(folder):
    return sorted(os.listdir(folder)) if folder.exists() else []


CASE_NAMES = sorted(cases(Path("/d")))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_one_line_no_output(data, runs, case):
    argv, words = cases(data)[case]
    result = runs[case]
    assert result.returncode == 1, result.stderr
    line = _error_line(result)
    assert line.startswith(f"plrp {argv[0]}: error: "), line
    assert "Fix: " in line, line
    for word in words:
        assert word in line, (word, line)
    assert not any(Path(p).name.startswith(case) for p in _left(data / "out")), _left(data / "out")
    assert not (data / "out" / case).exists()


def test_no_code_runs_without_trust_pickle(data, runs):
    """The refused pickles ran no code: their markers do not exist. With --trust-pickle the module is loaded
    (and its payload runs: the marker proves the payloads would have run)."""
    for case in ("pickle_module", "pickle_state"):
        assert runs[case].returncode == 1
    assert not list(data.glob("marker_*")) or [p.name for p in data.glob("marker_*")] == [
        "marker_trusted"
    ]
    assert runs["trusted_pickle"].returncode == 0, runs["trusted_pickle"].stderr
    assert (data / "marker_trusted").exists()
    assert "unpickling a full module (trust_pickle is set)" in runs["trusted_pickle"].stderr


def test_pt2_and_state_dict_load_without_unpickling_code(data, runs):
    """Under a guard that fails any torch.load(weights_only=False), both load and give the same relevance."""
    for case in ("good_pt2", "good_state"):
        assert runs[case].returncode == 0, runs[case].stderr
    with np.load(data / "good/pt2.npz") as a, np.load(data / "good/state.npz") as b:
        assert a["relevance"].shape == (3, 4, L)
        np.testing.assert_allclose(a["relevance"], b["relevance"], rtol=1e-4, atol=1e-6)


def test_n_lowercase_and_iupac(data, runs):
    """N and lower case are handled, IUPAC codes are N with one warning line; N gets zero relevance."""
    result = runs["good_odd_letters"]
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "IUPAC" in line]
    assert len(warnings) == 1 and LOG_LINE.match(warnings[0]), result.stderr
    assert "odd.fa" in warnings[0] and "treated as N" in warnings[0]
    with np.load(data / "good/odd.npz") as z, np.load(data / "good/pt2.npz") as ref:
        ohe, rel = z["ohe"][0], z["relevance"][0]
        absent = [10, 11, 12, 13, 30, 31]  # N, n, R, y
        assert not ohe[:, absent].any() and not rel[:, absent].any()
        assert ohe[:, 20:24].sum() == 4  # lower case acgt is one-hot
        assert rel[:, 50:].any() and ref["ohe"].shape == z["ohe"].shape


def test_readme_documents_n_and_iupac():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("**Input.**", 1)[1].split("\n\n", 1)[0]
    assert (
        "IUPAC" in section and "as `N` with one warning" in section and "zero relevance" in section
    )


def test_debug_and_log_show_the_traceback(data, runs):
    for case in ("debug",):
        result = runs[case]
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert "lrp.core.errors.PlrpError: " in result.stderr
        assert result.stderr.splitlines()[-1].startswith("plrp attribute: error: ")
    assert "invalid base 'X'" in runs["debug"].stderr
    # --log: the terminal gets one line, the log file the traceback and the line
    result = runs["log"]
    line = _error_line(result)
    text = (data / "good/plrp.log").read_text()
    assert "Traceback (most recent call last)" in text and line in text


def test_unreadable_fasta(data, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "locked.fa"
    path.write_text(">chr1\nACGT\n")
    path.chmod(0)
    result = _plrp(
        [
            "regions",
            "--fasta",
            str(path),
            "--length",
            "2",
            "--tile",
            "--out",
            str(tmp_path / "r.bed"),
        ]
    )
    line = _error_line(result)
    assert "locked.fa" in line and "not readable" in line
    assert not (tmp_path / "r.bed").exists()


def test_header_and_track_lines_are_skipped(data, tmp_path):
    bed = tmp_path / "peaks.bed"
    bed.write_text(
        "browser position chr1:1-100\ntrack name=peaks\n# chrom start end\nchr1\t500\t700\n\nchr2\t0\t10\n"
    )
    result = _plrp(_regions(data, bed=str(bed)) + ["--out", str(tmp_path / "r.bed")])
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t")[:3] for line in (tmp_path / "r.bed").read_text().splitlines()]
    assert rows == [["chr1", "500", "700"], ["chr2", "0", "200"]]
    assert oct((tmp_path / "r.bed").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------------ config
def _config(d):
    return {
        "genomes": {"g": {"fasta": str(d / "g.fa"), "regions": {"tile": {"step": 100}}}},
        "models": {"m": {"path": str(d / "model.pt2"), "length": L}},
        "methods": {"plrp": {"method": "plrp-lambda", "p_pos": 0.25}},
        "motif_database": {"meme": str(d / "meme.txt")},
    }


# Only what tests/test_config.py does not cover already (it has unknown keys, wrong types, bad values, p
# outside [0, 1) and an unknown method).
CONFIG = {
    "method_missing": (["methods", "plrp"], {"p_pos": 0.25}, "methods.plrp"),
    "p_pos_large": (["methods", "plrp", "p_pos"], 1.5, "methods.plrp.p_pos"),
    "length_string": (["models", "m", "length"], "200", "models.m.length"),
    "no_methods": (["methods"], {}, "methods"),
    "n_shuffles_zero": (
        ["methods", "plrp"],
        {"method": "deeplift-shap", "n_shuffles": 0},
        "n_shuffles",
    ),
    "unknown_nested": (
        ["genomes", "g", "regions", "tile", "stride"],
        5,
        "genomes.g.regions.tile.stride",
    ),
}


@pytest.fixture(scope="module")
def config_runs(data, tmp_path_factory):
    def run(name):
        path, value, _ = CONFIG[name]
        config = _config(data)
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return snakemake(tmp_path_factory.mktemp(name), "-n", "--cores", "1", config=config)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run, name) for name in CONFIG}
        good = pool.submit(
            snakemake,
            tmp_path_factory.mktemp("good_config"),
            "-n",
            "--cores",
            "1",
            config=_config(data),
        )
        return {name: f.result() for name, f in futures.items()}, good.result()


@pytest.mark.parametrize("name", sorted(CONFIG))
def test_bad_config_is_named(config_runs, name):
    results, good = config_runs
    assert good.returncode == 0, good.stderr[-3000:]
    result = results[name]
    assert result.returncode != 0
    text = result.stderr + result.stdout
    lines = [line for line in text.splitlines() if "config: " in line]
    assert lines, text[-3000:]
    assert CONFIG[name][2] in lines[0] and "Fix: " in lines[0], lines[0]
    assert "Traceback" not in text


def test_check_model_names_the_file_and_checks_the_target(data):
    """In-process: a loaded model remembers its file, so check_model's errors name it (no name passed), and
    ``target=`` checks the target before any explaining (for `plrp attribute` to call)."""
    from lrp.core.errors import PlrpError
    from lrp.engine.model_io import check_model, load_model

    program = load_model(data / "model.pt2")
    assert check_model(program, L, target={"index": 1}) == [(2, 2)]
    with pytest.raises(PlrpError, match=r"model\.pt2: target\.index 5 is out of range.*Fix: "):
        check_model(program, L, target={"index": 5})
    with pytest.raises(PlrpError, match=r"model\.pt2: .*not one value per sequence"):
        check_model(program, L, target={})
    with pytest.raises(PlrpError, match=r"^\S*model\.pt2: input shape mismatch"):
        check_model(program, 300)
