"""The embedded demo: a simulated genome with planted JASPAR motifs, the demo CNN and its training."""
