"""Benchmark runner: detectors over the scenes of a manifest, timed and evaluated.

See :func:`uniadrs_engine.benchmark.runner.run_benchmark`.
"""
