"""Benchmarks (`make bench`): run from a checkout, never installed, never routed in the product."""
