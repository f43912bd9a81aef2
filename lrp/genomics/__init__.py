"""Genomics I/O: validated FASTA access, BED regions and tiling, 2bit, bigWig/bigBed tracks and the relevance store."""
