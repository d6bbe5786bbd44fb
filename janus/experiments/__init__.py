"""Experiment definitions: configs, variants and the runner of the reproductions."""
