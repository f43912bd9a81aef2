"""The IGV session in real IGV desktop (Debian ``igv`` under Xvfb, batch mode), opened from another folder.

Three methods' tracks share one file name (``relevance.bw``), as the workflow writes them; each has its signal in
its own interval and its own colour. IGV's log must load every file, and in the snapshot every track row must
draw its own method's data in its own colour, under a name that differs from the other rows' names.
"""

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from lrp.genomics.genome import chrom_sizes
from lrp.report.colours import method_colour
from lrp.report.hub import write_hub

IGV_JAR = Path("/usr/share/java/igv.jar")
METHODS = ("alpha", "beta", "gamma")
SIZE = 6000
SIGNAL = {m: (1000 * (i + 1), 1000 * (i + 1) + 600) for i, m in enumerate(METHODS)}

pytestmark = pytest.mark.skipif(
    not (IGV_JAR.is_file() and shutil.which("xvfb-run") and shutil.which("java")),
    reason="IGV desktop is not installed (make test installs Debian's igv, xvfb and xauth)",
)


def _png_rgb(path):
    """The snapshot as (H, W, 3) uint8."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("igv")
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), SIZE))
    fasta = root / "genome.fa"
    fasta.write_text(">chr1\n" + "\n".join(seq[i : i + 60] for i in range(0, SIZE, 60)) + "\n")
    chrom_sizes(fasta)  # writes the .fai IGV needs
    bigwigs = []
    for method in METHODS:
        path = root / "results" / method / "relevance.bw"
        path.parent.mkdir(parents=True)
        values = np.zeros(SIZE)
        lo, hi = SIGNAL[method]
        values[lo:hi] = 1.0
        with pyBigWig.open(str(path), "w") as bw:
            bw.addHeader([("chr1", SIZE)])
            bw.addEntries("chr1", 0, values=values, span=1, step=1)
        bigwigs.append((method, path))
    hub = root / "results" / "hub"
    write_hub(hub, fasta, bigwigs=bigwigs)
    home, shots, elsewhere = root / "home", root / "shots", root / "elsewhere"
    for d in (home / "igv", shots, elsewhere):
        d.mkdir(parents=True)
    # offline, IGV would first fetch its default genome (hg19) from the network and hang
    (home / "igv" / "prefs.properties").write_text(f"DEFAULT_GENOME_KEY={fasta}\n")
    batch = root / "batch.txt"
    batch.write_text(
        f"load {hub / 'igv_session.xml'}\ngoto chr1:1-{SIZE}\n"
        f"snapshotDirectory {shots}\nsnapshot tracks.png\nexit\n"
    )
    java = ["java", f"-Duser.home={home}", "-cp", str(IGV_JAR), "org.broad.igv.ui.Main"]
    run = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1400x1000x24", *java, "-b", str(batch)],
        cwd=elsewhere,
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    png = shots / "tracks.png"
    assert png.is_file(), f"IGV wrote no snapshot:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
    return {"log": run.stdout + run.stderr, "image": _png_rgb(png), "bigwigs": dict(bigwigs)}


def test_igv_loads_every_track_file(snapshot):
    for method, path in snapshot["bigwigs"].items():
        assert f"Loading resource:  {path.resolve()}" in snapshot["log"], method


def _rows_of(image, rgb):
    """Row indices of pixels of exactly colour ``rgb`` (and their columns)."""
    hit = np.all(image == np.array(rgb, np.uint8), axis=2)
    return np.nonzero(hit)


def test_every_track_draws_its_own_data_in_its_own_colour(snapshot):
    image = snapshot["image"]
    data_x, spans = {}, {}
    for i, method in enumerate(METHODS):
        rgb = tuple(int(c) for c in method_colour(i).split(","))
        ys, xs = _rows_of(image, rgb)
        assert xs.size > 100, f"{method}: its colour {rgb} is not in the snapshot"
        data_x[method], spans[method] = (xs.min(), xs.max()), (ys.min(), ys.max())
    # rows are stacked in method order and do not overlap
    tops = [spans[m][0] for m in METHODS]
    assert tops == sorted(tops) and all(
        spans[a][1] < spans[b][0] for a, b in itertools.pairwise(METHODS)
    )
    # each track's bar lies where its own bigWig has signal: the bars' pixel columns scale as the intervals
    x0, y0 = data_x[METHODS[0]][0], data_x[METHODS[-1]][0]
    px_per_bp = (y0 - x0) / (SIGNAL[METHODS[-1]][0] - SIGNAL[METHODS[0]][0])
    for method in METHODS:
        lo, hi = SIGNAL[method]
        want = x0 + (lo - SIGNAL[METHODS[0]][0]) * px_per_bp
        assert abs(data_x[method][0] - want) <= 3, method
        assert abs((data_x[method][1] - data_x[method][0]) - (hi - lo) * px_per_bp) <= 3, method
    # each row's name differs from the others' (with the old relative session all three read "gamma")
    left = min(x for x, _ in data_x.values())
    names = [image[spans[m][0] : spans[m][1], : max(left - 20, 1)] for m in METHODS]
    height = min(n.shape[0] for n in names)
    names = [n[:height] for n in names]
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            assert not np.array_equal(names[a], names[b]), (METHODS[a], METHODS[b])
