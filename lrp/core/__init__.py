"""Foundations every layer uses: the one-line input errors and atomic file writes."""
