"""Benchmarks: speed and memory against diffusers' pipeline (speed.py), on random or bundled models."""
