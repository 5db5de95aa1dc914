"""Campaigns G1-G4 of the paper: a resumable grid runner, statistics and reports.

Run one with ``python -m experiments.g1`` (``g2``, ``g3``, ``g4``); ``--help`` lists the options.
"""
