"""Benchmarks against a running stack: each prints the platform's figure beside the raw limit."""
