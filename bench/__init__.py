"""code_wake's benchmarks: anchors and code_wake measured side by side, as ratios.

Run with ``make bench`` (or ``python -m bench``); never part of the tests.
"""
