"""Load-test harness of the example site (``make bench``; see benchmarks/README.md)."""
