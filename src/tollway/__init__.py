"""Tollway: an AI gateway and token control plane."""

__version__ = "0.1.0"
