"""Routing: model names and aliases to deployments, ordering for fallback."""
