"""`make bench`: the performance figures of the release pipeline, as side-by-side ratios.

Run ``python -m benchmarks.run``; see docs/benchmarks.md for the method.
"""
