"""Scoring relevance and motif calls against known binding sites."""
