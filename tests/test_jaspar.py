"""JASPAR selection (pyjaspar, offline) and the MEME writer/reader."""

import numpy as np
import pytest
from tangermeme.io import read_meme as tm_read_meme

from lrp.core.errors import PlrpError
from lrp.motifs.database import read_meme, select_motifs, write_meme
from lrp.steps.cli import main


@pytest.fixture(scope="module")
def selection():
    return select_motifs(names=["CTCF", "GATA1", "Nrf1", "MA0080", "MA0091.1"])


def test_select_by_name_and_id(selection):
    motifs, ids = selection
    assert list(motifs) == ["CTCF", "GATA1", "Nrf1", "Spi1", "TAL1::TCF3"]
    assert ids["CTCF"] == "MA0139.2"  # the original CTCF matrix, latest version
    assert ids["Spi1"].startswith("MA0080.")
    assert ids["TAL1::TCF3"] == "MA0091.1"  # an explicit version is kept
    for pfm in motifs.values():
        assert pfm.dtype == np.float64 and pfm.shape[0] == 4
        np.testing.assert_allclose(pfm.sum(0), 1.0)
    assert motifs["CTCF"].shape[1] == 15


def test_name_matched_within_taxon():
    # JASPAR's "crp" is a fly protein (MA2303.1, insects): not found among vertebrates, found among insects
    with pytest.raises(PlrpError, match=r"no matrix named 'crp'.*MA2303\.1 \(insects\)"):
        select_motifs(names=["crp"])
    _motifs, ids = select_motifs(tax_group="insects", names=["crp"])
    assert ids == {"crp": "MA2303.1"}
    # case-insensitive within the taxon: the mouse matrix name
    _, ids = select_motifs(names=["NRF1"])
    assert ids == {"Nrf1": "MA0506.3"}


def test_whole_collection_unique_names_latest_versions():
    motifs, ids = select_motifs()
    assert len(motifs) == 1019
    assert len(set(ids.values())) == len(ids)
    bases = [i.split(".")[0] for i in ids.values()]
    assert len(set(bases)) == len(bases)  # one (the latest) version per matrix
    ctcf = {n: i for n, i in ids.items() if n.startswith("CTCF")}
    assert ctcf["CTCF"] == "MA0139.2" and "CTCF_MA1929.2" in ctcf


def test_bad_release():
    with pytest.raises(PlrpError, match="JASPAR2099.*JASPAR2026"):
        select_motifs(release="JASPAR2099")


def test_meme_round_trip(tmp_path, selection):
    motifs, ids = selection
    path = tmp_path / "db.meme"
    write_meme(path, motifs, ids)
    text = path.read_text()
    assert "MOTIF MA0139.2 CTCF\n" in text and "letter-probability matrix: alength= 4 w= 15" in text
    ours, our_ids = read_meme(path, return_ids=True)
    theirs = tm_read_meme(str(path))
    assert list(ours) == list(motifs) and our_ids == ids
    assert list(theirs) == [f"{ids[n]} {n}" for n in motifs]
    for name, pfm in motifs.items():
        np.testing.assert_array_equal(ours[name], theirs[f"{ids[name]} {name}"].numpy())
        np.testing.assert_allclose(ours[name], pfm, atol=1e-6)
    # without ids: MOTIF NAME only
    write_meme(path, motifs)
    assert list(read_meme(path)) == list(motifs)


USER_MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.3 C 0.2 G 0.2 T 0.3

MOTIF 1-GATAAG STREME-1
letter-probability matrix: alength= 4 w= 3 nsites= 12 E= 1e-5
\t0.1\t0.2\t0.3\t0.4
 0.25 0.25 0.25 0.25
1.0 0.0 0.0 0.0

URL none
MOTIF plain
letter-probability matrix: alength= 4 w= 2
0.5 0.5 0 0
0 0 0.5 0.5
MOTIF dup STREME-1
letter-probability matrix: alength= 4 w= 1
0 0 0 1
"""


def test_read_user_meme(tmp_path):
    path = tmp_path / "user.meme"
    path.write_text(USER_MEME)
    motifs, ids = read_meme(path, return_ids=True)
    assert list(motifs) == ["STREME-1", "plain", "STREME-1_dup"]
    assert ids["STREME-1"] == "1-GATAAG"
    np.testing.assert_array_equal(motifs["STREME-1"][:, 0], [0.1, 0.2, 0.3, 0.4])
    assert motifs["plain"].shape == (4, 2)
    theirs = tm_read_meme(str(path))
    np.testing.assert_array_equal(theirs["1-GATAAG STREME-1"].numpy(), motifs["STREME-1"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("MEME version 4\n\nALPHABET= ACGT\n", r"no motif in this file"),
        (
            "MOTIF m1 TF1\nletter-probability matrix: alength= 4 w= 2\n0.2 0.2 0.2 0.2\n1 0 0 0\n",
            r"motif m1 \(TF1\): not a letter-probability matrix: row 1 sums to 0.8",
        ),
        (
            "MOTIF m2\nletter-probability matrix: alength= 4 w= 1\n10 3 4 5\n",
            r"motif m2: .*sums to 22",
        ),
        (
            "MOTIF m3\nletter-probability matrix: alength= 4 w= 3\n0.25 0.25 0.25 0.25\n",
            r"motif m3: 1 matrix rows, expected 3",
        ),
        (
            "MOTIF m4\nletter-probability matrix: alength= 4 w= 1\n0.5 0.5 0\n",
            r"motif m4: row 1 has 3",
        ),
        ("ALPHABET= ACDEFGHIKLMNPQRSTVWY\nMOTIF p\n", r"not DNA"),
    ],
)
def test_read_meme_errors(tmp_path, text, message):
    path = tmp_path / "bad.meme"
    path.write_text(text)
    with pytest.raises(PlrpError, match=message) as err:
        read_meme(path)
    assert str(err.value).startswith(str(path)) and "Fix:" in str(err.value)
    assert "\n" not in str(err.value)


def test_read_meme_missing(tmp_path):
    with pytest.raises(PlrpError, match="not found"):
        read_meme(tmp_path / "none.meme")


def test_cli_jaspar_meme(tmp_path, capsys):
    out = tmp_path / "db.meme"
    argv = [
        "jaspar-meme",
        "--release",
        "JASPAR2026",
        "--collection",
        "CORE",
        "--tax-group",
        "vertebrates",
        "--names",
        "CTCF",
        "SPI1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert list(read_meme(out)) == ["CTCF", "Spi1"]
    assert main(["jaspar-meme", "--names", "NOSUCHTF", "--out", str(tmp_path / "x.meme")]) == 1
    assert "NOSUCHTF" in capsys.readouterr().err
    assert not (tmp_path / "x.meme").exists()
