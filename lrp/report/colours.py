"""Track colours (``"R,G,B"``): one per TF for motif calls and known sites, one per method for relevance."""

import zlib

from lrp.motifs.calls import UNKNOWN

UNKNOWN_RGB = "150,150,150"
#: 20 distinguishable colours (tab20 without its greys); a TF's colour is crc32(name) % 20: stable everywhere
PALETTE = [
    "31,119,180",
    "174,199,232",
    "255,127,14",
    "255,187,120",
    "44,160,44",
    "152,223,138",
    "214,39,40",
    "255,152,150",
    "148,103,189",
    "197,176,213",
    "140,86,75",
    "196,156,148",
    "227,119,194",
    "247,182,210",
    "188,189,34",
    "219,219,141",
    "23,190,207",
    "158,218,229",
    "57,59,121",
    "99,121,57",
]


def tf_colour(name):
    """``"R,G,B"`` for a TF name: the same colour in every method's track; grey for ``unknown``."""
    if name == UNKNOWN:
        return UNKNOWN_RGB
    return PALETTE[zlib.crc32(str(name).encode()) % len(PALETTE)]


#: method colours (R,G,B), by position; distinct from the TF palette of the motif calls
METHOD_COLOURS = [
    "0,90,200",
    "200,70,0",
    "0,140,70",
    "150,0,170",
    "90,90,90",
    "170,130,0",
    "0,150,170",
    "200,0,110",
]


def method_colour(i):
    """The colour of the ``i``-th method (cycling through :data:`METHOD_COLOURS`)."""
    return METHOD_COLOURS[i % len(METHOD_COLOURS)]


def lighter(rgb, f=0.5):
    """``"R,G,B"`` mixed with white by ``f``."""
    return ",".join(str(round(int(c) + (255 - int(c)) * f)) for c in rgb.split(","))
