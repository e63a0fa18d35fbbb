"""The benchmark suite's parts: workloads, FLOP counts and roofline, peers, timing, long sequences.

`experiments/benchmark.py` reads the flags and writes the outputs; these modules hold no flags.
"""
