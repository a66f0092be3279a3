"""Upstream adapters: one per provider API, all behind the small `Provider` protocol."""

from tollway.providers.base import Provider, build_provider

__all__ = ["Provider", "build_provider"]
