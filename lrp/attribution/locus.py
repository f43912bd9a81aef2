"""One locus at a time: the windows of a few regions or sequences, and their relevance as files.

``plrp explain`` (:mod:`lrp.steps.explain`) reads its input here, explains it with the workflow's own
:func:`lrp.attribution.attribute.attribute_regions` and writes it with :func:`write_locus`:

- a region as genome browsers show it, ``chr:start-end`` (1-based, inclusive; commas allowed) or ``chr:pos``
  (one base, e.g. a variant), or a BED (0-based, half-open), is re-centred to the model's input length ``L``
  exactly as the workflow re-centres a BED of regions (:func:`lrp.genomics.regions.resize`: start = old start
  + (old width - L) // 2, shifted inside the chromosome);
- a FASTA of sequences: each record's central ``L`` bp (the same rule); the record's name stands for the
  chromosome in the bedGraph, positions counted from the record's first base.

Outputs (:func:`write_locus`): ``relevance.npy``, ``hypothetical.npy``, ``ohe.npy`` (``(N, 4, L)`` float32,
ACGT order, as modisco and tangermeme read them), ``windows.tsv`` (row, name, chrom, start, end, target: row
``i`` of the arrays, 0-based half-open window, the explained output ``f_t(x)``) and ``relevance.bedGraph``
(the projected relevance ``relevance.sum(1)`` per base; overlapping windows stitched by the nearest-centre
rule of the workflow's bigWig, :mod:`lrp.genomics.tracks`).
"""

import logging
import re

import numpy as np
import pandas as pd

from lrp.core.atomic import atomic_open
from lrp.core.errors import PlrpError, input_error
from lrp.genomics.genome import chrom_sizes as fasta_sizes
from lrp.genomics.genome import fetch_one_hot, open_fasta
from lrp.genomics.regions import read_bed, resize
from lrp.genomics.tracks import iter_chrom_runs, run_length_intervals

log = logging.getLogger("plrp")

#: ``chr:start-end`` or ``chr:pos`` (1-based, inclusive; commas and spaces in numbers allowed)
_REGION = re.compile(r"^(?P<chrom>.+):(?P<start>[\d,]+)(?:-(?P<end>[\d,]+))?$")
REGION_FIX = (
    "write chr:start-end (1-based, inclusive, as a genome browser shows it), e.g. chr1:1,000-2,000"
)


def parse_region(text, sizes, fasta="--fasta"):
    """A region string -> ``(chrom, start, end)``, 0-based half-open.

    Parameters
    ----------
    text : str
        ``chr:start-end`` (1-based, inclusive, e.g. ``chr1:1,001-2,000`` is BED ``chr1 1000 2000``) or
        ``chr:pos`` (one base). The chromosome is everything before the last ``:``.
    sizes : dict
        ``{chrom: length}`` of the genome.
    fasta : str
        The genome's name in messages.

    Raises
    ------
    PlrpError
        A malformed string, an unknown contig, or a region outside its contig.
    """
    match = _REGION.match(text.strip().replace(" ", ""))
    if not match or not match["start"].strip(","):
        raise input_error("--region", repr(text), "not a region", REGION_FIX)
    chrom = match["chrom"]
    start = int(match["start"].replace(",", ""))
    end = int((match["end"] or match["start"]).replace(",", ""))
    if chrom not in sizes:
        names = ", ".join(list(sizes)[:5]) + (", ..." if len(sizes) > 5 else "")
        raise input_error(
            "--region",
            text,
            f"contig {chrom!r} is not in {fasta}",
            f"use one of its record names ({names})",
        )
    if start < 1 or end < start:
        raise input_error(
            "--region", text, f"start {start} must be >= 1 and <= end {end}", REGION_FIX
        )
    if end > sizes[chrom]:
        raise input_error(
            "--region",
            text,
            f"end {end} is past the end of {chrom} ({sizes[chrom]} bp in {fasta})",
            "check that the region matches this genome assembly",
        )
    return chrom, start - 1, end


def _check_long_enough(windows, sizes, length, where):
    """Every window's chromosome (or sequence) holds at least ``length`` bp, else a one-line error."""
    for chrom in dict.fromkeys(windows["chrom"]):
        if sizes[chrom] < length:
            raise input_error(
                where,
                chrom,
                f"{sizes[chrom]} bp, shorter than the model's input length {length}",
                f"give regions on contigs (or sequences) of at least {length} bp",
            )


def locus_windows(length, fasta=None, regions=(), bed=None, sequences=None):
    """The one-hot windows of regions of a genome, or of a FASTA of sequences, in the order given.

    Parameters
    ----------
    length : int
        The model's input length ``L`` (bp).
    fasta : str or None
        Genome FASTA (for ``regions`` and ``bed``).
    regions : sequence of str
        Region strings (:func:`parse_region`).
    bed : str or None
        A BED of regions (0-based, half-open; validated by :func:`lrp.genomics.regions.read_bed`).
    sequences : str or None
        A FASTA of sequences (instead of ``fasta``), each at least ``L`` bp.

    Returns
    -------
    x : ndarray, shape (N, 4, L)
        One-hot windows, float32, ACGT order (all-zero columns for N).
    windows : pandas.DataFrame
        ``chrom, start, end, name`` of each window (0-based, half-open; ``end - start == L``).
    sizes : dict
        ``{chrom: length}`` of the genome (or of the sequences), in file order.
    """
    if length <= 0:
        raise PlrpError(f"--length {length}: must be positive. Fix: give the model's input length")
    if sequences is not None:
        if fasta is not None or regions or bed is not None:
            raise PlrpError(
                "--sequences is the input on its own. Fix: drop --fasta, --region and --bed"
            )
        handle = open_fasta(sequences)
        sizes = fasta_sizes(handle)
        rows = pd.DataFrame({"chrom": list(sizes), "start": 0, "end": list(sizes.values())})
        rows["name"] = rows["chrom"]
        where = sequences
    else:
        if fasta is None or bool(regions) == (bed is not None):
            raise PlrpError(
                "give the input as --fasta with --region (one or more) or --bed, or as --sequences. "
                "Fix: e.g. --fasta genome.fa --region chr1:1,000-2,000"
            )
        handle = open_fasta(fasta)
        sizes = fasta_sizes(handle)
        if bed is not None:
            rows = read_bed(bed, sizes, "regions")[["chrom", "start", "end", "name"]]
            where = bed
        else:
            parsed = [parse_region(text, sizes, fasta) for text in regions]
            rows = pd.DataFrame(parsed, columns=["chrom", "start", "end"])
            rows["name"] = [text.strip() for text in regions]
            where = "--region"
    rows = rows.astype({"start": np.int64, "end": np.int64})
    _check_long_enough(rows, sizes, length, where)
    windows = resize(rows, length, sizes)
    return fetch_one_hot(handle, windows, length), windows, sizes


def _save_npy(path, array):
    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def write_bedgraph(path, sizes, windows, relevance, track_name, description):
    """Write the projected relevance of windows as a bedGraph with a track line, atomically.

    Parameters
    ----------
    path : str or Path
        The bedGraph.
    sizes : dict
        ``{chrom: length}``: the chromosome order of the file.
    windows : pandas.DataFrame
        ``chrom, start, end`` of each window (equal lengths ``L``).
    relevance : ndarray, shape (N, 4, L) or (N, L)
        Relevance per window (summed over the channels).
    track_name, description : str
        The track line's ``name`` and ``description``.

    Runs of equal consecutive values are one line each; overlapping windows are stitched by the
    nearest-centre rule of :func:`lrp.genomics.tracks.iter_chrom_runs`, so each base is written once.
    """
    with atomic_open(path) as handle:
        handle.write(
            f'track type=bedGraph name="{track_name}" description="{description}" '
            "visibility=full autoScale=on alwaysZero=on\n"
        )
        for chrom, start, values in iter_chrom_runs(sizes, windows, relevance):
            for _, s, e, v in run_length_intervals(chrom, int(start), values):
                handle.write(f"{chrom}\t{s}\t{e}\t{v:.6g}\n")


def write_locus(out_dir, x, windows, sizes, result, method):
    """Write one ``plrp explain`` run into ``out_dir``, every file atomically (see the module docstring).

    Parameters
    ----------
    out_dir : Path
        The output folder.
    x : ndarray, shape (N, 4, L)
        The one-hot windows (ACGT).
    windows : pandas.DataFrame
        ``chrom, start, end, name`` of each window.
    sizes : dict
        ``{chrom: length}`` (bedGraph order).
    result : dict
        :func:`lrp.attribution.attribute.attribute_regions`'s output (``relevance``, ``hypothetical``
        ``(N, 4, L)``, ``target`` ``(N,)``).
    method : str
        The method's name, for the bedGraph's track line.
    """
    _save_npy(out_dir / "relevance.npy", result["relevance"].astype(np.float32))
    _save_npy(out_dir / "hypothetical.npy", result["hypothetical"].astype(np.float32))
    _save_npy(out_dir / "ohe.npy", np.asarray(x, dtype=np.float32))
    table = windows[["name", "chrom", "start", "end"]].copy()
    table.insert(0, "row", np.arange(len(table)))
    table["target"] = result["target"]
    with atomic_open(out_dir / "windows.tsv") as handle:
        table.to_csv(handle, sep="\t", index=False)
    write_bedgraph(
        out_dir / "relevance.bedGraph",
        sizes,
        windows,
        result["relevance"],
        f"plrp {method}",
        f"projected relevance ({method}), plrp explain",
    )
