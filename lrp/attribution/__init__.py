"""Explaining a shard of genomic regions with one method: the engine fed from the genome."""
