"""Experiment code that bench scripts share (and tests/bench checks); the library never imports it.

A bench script run as ``python bench/NAME.py`` imports it as ``experiments.MODULE``; the tests import it as
``bench.experiments.MODULE`` (the repository root is on their path).
"""
