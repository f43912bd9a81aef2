"""Motif analysis: seqlets, TOMTOM-annotated motif calls, learned motifs and the motif database."""
