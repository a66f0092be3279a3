"""Metering: normalized usage, the price catalog, token estimation, fingerprints."""
