"""Genome-browser packaging of one run: a UCSC track hub and an IGV desktop session.

CLI::

    plrp hub --bigwigs [NAME=]relevance.bw ... --bigbeds [NAME=]calls.bb ... --fasta genome.fa \\
        [--known-sites known_sites.bed] --out-dir hub/ [--genome-name demo | --assembly hg38]

Writes into ``--out-dir``: ``hub.txt``, ``genomes.txt``, ``GENOME/trackDb.txt`` (a composite of the
methods' bigWigs, a composite of the motif-call bigBeds, the known sites), for a custom genome
``GENOME/GENOME.2bit`` (an assembly hub), ``GENOME/known_sites.bb`` and ``igv_session.xml`` (the FASTA,
its ``.fai`` and the same tracks). Every path is relative (to ``trackDb.txt`` for the hub, to the session
for IGV), so the folder and the files it points to can be moved or hosted together; ``--copy`` copies the
tracks into the hub folder instead. A track without a NAME is named by its file stem, or by its folder when
stems repeat or say nothing (``lrp/relevance.bw`` -> ``lrp``).
"""

import logging
import os
import re
import shutil
import stat
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from lrp.core.atomic import atomic_open, atomic_path
from lrp.core.errors import input_error
from lrp.genomics.tracks import BIGBED_MAGIC
from lrp.report.colours import lighter, method_colour, tf_colour

log = logging.getLogger("plrp")

BIGWIG_MAGIC = 0x888FFC26


#: file stems that say nothing about the track: such a file is named by its folder
GENERIC_STEMS = {"relevance", "calls", "track", "tracks"}


def named_paths(items):
    """``[NAME=]PATH`` items -> ``[(name, Path)]``; unnamed ones take the stem, or the folder when the
    stem repeats or is generic (``lrp/relevance.bw`` -> ``lrp``)."""
    parsed = []
    for item in items or []:
        name, sep, path = str(item).partition("=")
        parsed.append((name, Path(path)) if sep else (None, Path(item)))
    stems = [p.stem for n, p in parsed if n is None]
    repeated = {s for s in stems if stems.count(s) > 1} | GENERIC_STEMS
    return [
        (n if n is not None else (p.parent.name if p.stem in repeated else p.stem), p)
        for n, p in parsed
    ]


def track_id(text):
    """A UCSC track name: letters, digits and ``_``, starting with a letter."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", str(text))
    return out if out[:1].isalpha() else f"t_{out}"


def magic(path):
    """The first 4 bytes of a file as a little-endian uint32."""
    with open(path, "rb") as handle:
        return int.from_bytes(handle.read(4), "little")


def _check_magic(path, expected, what):
    if not Path(path).is_file():
        raise input_error(path, None, f"{what} not found", "run the step that makes it first")
    if magic(path) not in (expected, int.from_bytes(expected.to_bytes(4, "little"), "big")):
        raise input_error(path, None, f"not a {what} file", f"give a {what} file")


def robust_limit(path, percentile=99.9, max_bases=2_000_000, block=10_000):
    """``(lo, hi)`` view limits of a bigWig: +-the ``percentile`` of |value| over covered bases
    (``lo = 0`` when no value is negative); at most ``max_bases`` bases are read, in evenly spread
    blocks."""
    import pyBigWig

    bw = pyBigWig.open(str(path))
    try:
        chroms = bw.chroms()
        total = sum(chroms.values())
        step = max(block, int(total * block / max(max_bases, block)))
        parts = []
        for chrom, size in chroms.items():
            for start in range(0, size, step):
                v = np.asarray(bw.values(chrom, start, min(size, start + block), numpy=True))
                parts.append(v[np.isfinite(v)])
    finally:
        bw.close()
    values = np.concatenate(parts) if parts else np.zeros(0)
    if not len(values):
        return 0.0, 1.0
    hi = float(np.percentile(np.abs(values), percentile))
    hi = hi if hi > 0 else float(np.abs(values).max()) or 1.0
    return (-hi if values.min() < 0 else 0.0), hi


def _fmt(x):
    return f"{x:.4g}"


def bigbed_records(path):
    """All records of a bigBed -> list of ``(chrom, start, end, fields)`` (fields: the rest, split)."""
    import pyBigWig

    bb = pyBigWig.open(str(path))
    try:
        out = []
        for chrom, size in bb.chroms().items():
            for start, end, rest in bb.entries(chrom, 0, size) or []:
                out.append((chrom, int(start), int(end), rest.split("\t") if rest else []))
        return out
    finally:
        bb.close()


def default_locus(bigbeds, sizes, width=2000, known=None):
    """``chrom:start-end`` (1-based), ``width`` bp around the highest-scoring call; with no call (every
    method called nothing) around the first known site in genome order (``known``: a frame with chrom,
    start, end, or None), else the first ``width`` bp of the first chromosome."""
    best = None
    for _, path in bigbeds:
        for chrom, start, end, fields in bigbed_records(path):
            score = float(fields[1]) if len(fields) > 1 else 0.0
            if best is None or score > best[0]:
                best = (score, chrom, start, end)
    if best is None and known is not None and len(known):
        rank = {c: i for i, c in enumerate(sizes)}
        first = known.iloc[np.lexsort((known["start"], known["chrom"].map(rank)))].iloc[0]
        best = (0.0, first["chrom"], int(first["start"]), int(first["end"]))
    if best is None:
        chrom = next(iter(sizes))
        return f"{chrom}:1-{min(width, sizes[chrom])}"
    _, chrom, start, end = best
    mid = (start + end) // 2
    lo = max(0, min(mid - width // 2, sizes[chrom] - width))
    return f"{chrom}:{lo + 1}-{min(sizes[chrom], lo + width)}"


def known_sites_bigbed(bed, sizes, out):
    """Known sites BED6 (a path, or a frame read by ``read_bed``) -> BED9 bigBed (itemRgb by TF)."""
    from lrp.genomics.regions import read_bed
    from lrp.genomics.tracks import write_bigbed

    df = bed if hasattr(bed, "columns") else read_bed(bed, sizes, what="known sites")
    df = df.assign(
        score=0, thickStart=df["start"], thickEnd=df["end"], itemRgb=df["name"].map(tf_colour)
    )
    write_bigbed(out, sizes, df)


def publish(paths):
    """Make files readable as a new file would be (``0o666 & ~umask``): temporary files are 0600."""
    umask = os.umask(0)
    os.umask(umask)
    for path in paths:
        os.chmod(path, 0o666 & ~umask)


def _copy(src, dst):
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _rel(path, base):
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def _absolute(path):
    return Path(path).resolve().as_posix()


def _stanza(settings, indent=""):
    return "".join(f"{indent}{k} {v}\n" for k, v in settings.items() if v is not None) + "\n"


def trackdb_text(bigwigs, bigbeds, known, base, limits, prefix="plrp"):
    """The trackDb of a hub: ``bigwigs``/``bigbeds``: ``[(name, path)]``; ``known``: a bigBed or None;
    ``limits``: ``{name: (lo, hi)}``; paths relative to ``base`` (the trackDb's folder)."""
    out = ""
    if bigwigs:
        out += _stanza(
            {
                "track": f"{prefix}_relevance",
                "compositeTrack": "on",
                "shortLabel": "Relevance",
                "longLabel": "Relevance of the present base per method (projected)",
                "type": "bigWig",
                "visibility": "full",
                "autoScale": "off",
                "alwaysZero": "on",
                "graphTypeDefault": "bar",
                "windowingFunction": "mean+whiskers",
                "maxHeightPixels": "100:50:16",
                "dragAndDrop": "subTracks",
                "priority": "1",
            }
        )
        for i, (name, path) in enumerate(bigwigs):
            lo, hi = limits[name]
            colour = method_colour(i)
            out += _stanza(
                {
                    "track": track_id(f"{prefix}_relevance_{name}"),
                    "parent": f"{prefix}_relevance on",
                    "shortLabel": name[:17],
                    "longLabel": f"{name}: relevance of the present base"[:80],
                    "type": f"bigWig {_fmt(lo)} {_fmt(hi)}",
                    "bigDataUrl": _rel(path, base),
                    "color": colour,
                    "altColor": lighter(colour),
                    "viewLimits": f"{_fmt(lo)}:{_fmt(hi)}",
                    "autoScale": "off",
                    "maxHeightPixels": "100:50:16",
                    "visibility": "full",
                    "priority": str(i + 1),
                },
                indent="    ",
            )
    if bigbeds:
        out += _stanza(
            {
                "track": f"{prefix}_calls",
                "compositeTrack": "on",
                "shortLabel": "Motif calls",
                "longLabel": "Motif calls per method (name = best database match, colour per TF)",
                "type": "bigBed 9",
                "itemRgb": "on",
                "visibility": "pack",
                "dragAndDrop": "subTracks",
                "priority": "2",
            }
        )
        for i, (name, path) in enumerate(bigbeds):
            out += _stanza(
                {
                    "track": track_id(f"{prefix}_calls_{name}"),
                    "parent": f"{prefix}_calls on",
                    "shortLabel": f"{name} calls"[:17],
                    "longLabel": f"{name}: motif calls"[:80],
                    "type": "bigBed 9",
                    "bigDataUrl": _rel(path, base),
                    "itemRgb": "on",
                    "visibility": "pack",
                    "priority": str(i + 1),
                },
                indent="    ",
            )
    if known is not None:
        out += _stanza(
            {
                "track": f"{prefix}_known_sites",
                "shortLabel": "Known sites",
                "longLabel": "Known sites (TF name, colour per TF)",
                "type": "bigBed 9",
                "bigDataUrl": _rel(known, base),
                "itemRgb": "on",
                "visibility": "pack",
                "priority": "3",
            }
        )
    return out


def session_xml(fasta, bigwigs, bigbeds, known, base, limits, locus, assembly=None):
    """IGV desktop session XML text, every path absolute.

    IGV desktop (2.16) matches a session's tracks to their files by the file's resolved absolute path: with
    relative paths it cannot, and gives every track the name and data of one file when the files share a
    name (each method's ``relevance.bw``). After moving the results, write the session again.
    ``base`` is unused and kept for the hub's call."""
    root = ET.Element(
        "Session",
        genome=assembly or _absolute(fasta),
        locus=locus,
        hasGeneTrack="false",
        hasSequenceTrack="true",
        version="8",
    )
    resources = ET.SubElement(root, "Resources")
    for _, path in [*bigwigs, *bigbeds] + ([("known", known)] if known is not None else []):
        ET.SubElement(resources, "Resource", path=_absolute(path))
    data = ET.SubElement(root, "Panel", name="DataPanel")
    for i, (name, path) in enumerate(bigwigs):
        lo, hi = limits[name]
        colour = method_colour(i)
        track = ET.SubElement(
            data,
            "Track",
            attributeKey=name,
            autoScale="false",
            clazz="org.broad.igv.track.DataSourceTrack",
            color=colour,
            altColor=lighter(colour),
            fontSize="10",
            height="60",
            id=_absolute(path),
            name=name,
            renderer="BAR_CHART",
            visible="true",
            windowFunction="mean",
        )
        ET.SubElement(
            track,
            "DataRange",
            baseline="0.0",
            drawBaseline="true",
            flipAxis="false",
            maximum=_fmt(hi),
            minimum=_fmt(lo),
            type="LINEAR",
        )
    features = ET.SubElement(root, "Panel", name="FeaturePanel")
    if not assembly:
        ET.SubElement(
            features,
            "Track",
            attributeKey="Reference sequence",
            clazz="org.broad.igv.track.SequenceTrack",
            id="Reference sequence",
            name="Reference sequence",
            visible="true",
        )
    calls = [(f"{n} calls", p) for n, p in bigbeds]
    for name, path in calls + ([("known sites", known)] if known is not None else []):
        ET.SubElement(
            features,
            "Track",
            attributeKey=name,
            clazz="org.broad.igv.track.FeatureTrack",
            displayMode="EXPANDED",
            id=_absolute(path),
            name=name,
            visible="true",
            itemRgb="true",
        )
    ET.indent(root, space="    ")
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )


def write_hub(
    out_dir,
    fasta,
    bigwigs=(),
    bigbeds=(),
    known_sites=None,
    genome_name="demo",
    assembly=None,
    hub_name=None,
    label=None,
    email="plrp@localhost",
    copy=False,
    percentile=99.9,
):
    """Write the hub and the IGV session into ``out_dir``; returns the paths written.

    ``bigwigs``/``bigbeds``: ``[(name, path)]``. ``assembly``: a UCSC assembly name (e.g. ``hg38``):
    then no 2bit is written and the tracks attach to that assembly; else an assembly hub named
    ``genome_name`` is built from the FASTA.
    """
    from lrp.genomics.genome import chrom_sizes
    from lrp.genomics.regions import read_bed

    out_dir = Path(out_dir)
    sizes = chrom_sizes(fasta)
    # every input is checked before anything is written: a bad one leaves no partial hub
    known_sites = read_bed(known_sites, sizes, what="known sites") if known_sites else None
    bigwigs = [(n, Path(p)) for n, p in bigwigs]
    bigbeds = [(n, Path(p)) for n, p in bigbeds]
    for n, p in bigwigs:
        _check_magic(p, BIGWIG_MAGIC, "bigWig")
    for n, p in bigbeds:
        _check_magic(p, BIGBED_MAGIC, "bigBed")
    for kind, items in (("bigWig", bigwigs), ("bigBed", bigbeds)):
        names = [n for n, _ in items]
        if len(set(names)) != len(names):
            raise input_error(
                items[0][1], None, f"repeated {kind} track names {names}", "give NAME=PATH"
            )
    genome = assembly or genome_name
    gdir = out_dir / genome
    gdir.mkdir(parents=True, exist_ok=True)  # out_dir too
    written = []
    if copy:
        tracks = gdir / "tracks"
        tracks.mkdir(exist_ok=True)
        bigwigs_c = [(n, tracks / f"{track_id(n)}.bw") for n, _ in bigwigs]
        bigbeds_c = [(n, tracks / f"{track_id(n)}.calls.bb") for n, _ in bigbeds]
        for (_, src), (_, dst) in zip(bigwigs + bigbeds, bigwigs_c + bigbeds_c):
            _copy(src, dst)
            written.append(dst)
        bigwigs, bigbeds = bigwigs_c, bigbeds_c
    known = None
    if known_sites is not None:
        known = gdir / "known_sites.bb"
        known_sites_bigbed(known_sites, sizes, known)
        written.append(known)
    limits = {n: robust_limit(p, percentile) for n, p in bigwigs}
    locus = default_locus(bigbeds, sizes, known=known_sites)
    genome_lines = {"genome": genome, "trackDb": f"{genome}/trackDb.txt"}
    if not assembly:
        from lrp.genomics.twobit import write_2bit

        twobit = gdir / f"{genome}.2bit"
        write_2bit(fasta, twobit)
        written.append(twobit)
        genome_lines.update(
            {
                "twoBitPath": f"{genome}/{genome}.2bit",
                "organism": genome,
                "description": f"{genome} (from {Path(fasta).name})",
                "scientificName": genome,
                "defaultPos": locus,
                "orderKey": "1",
            }
        )
    hub_name = track_id(hub_name or f"plrp_{genome}")
    label = label or f"plrp {genome}"
    hub_txt = {
        "hub": hub_name,
        "shortLabel": label[:17],
        "longLabel": f"{label}: relevance tracks, motif calls and known sites"[:80],
        "genomesFile": "genomes.txt",
        "email": email,
    }
    texts = {
        out_dir / "hub.txt": _stanza(hub_txt).rstrip("\n") + "\n",
        out_dir / "genomes.txt": _stanza(genome_lines).rstrip("\n") + "\n",
        gdir / "trackDb.txt": trackdb_text(bigwigs, bigbeds, known, gdir, limits),
        out_dir / "igv_session.xml": session_xml(
            fasta, bigwigs, bigbeds, known, out_dir, limits, locus, assembly
        ),
    }
    for path, text in texts.items():
        with atomic_open(path, encoding="utf-8") as handle:
            handle.write(text)
        written.append(path)
    publish(written)
    private = [p for _, p in bigwigs + bigbeds if not os.stat(p).st_mode & stat.S_IROTH]
    if private:
        log.warning(
            "hub: %d tracks (e.g. %s) are not readable by others: a web server running as another "
            "user cannot serve them (chmod o+r, or --copy)",
            len(private),
            private[0],
        )
    log.info(
        "hub: %s (%d tracks), IGV session %s",
        out_dir / "hub.txt",
        len(bigwigs) + len(bigbeds),
        out_dir / "igv_session.xml",
    )
    return written
