"""The ``plrp`` command line: one module per step, argument parsing and calls into the layers."""
