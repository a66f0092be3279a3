"""Tollway's benchmarks: gateway overhead against the simulated upstream, servers, JSON.

`python -m benchmarks.gateway` measures added latency, peak throughput and streaming
TTFT overhead; `python -m benchmarks.servers` compares ASGI servers and JSON libraries.
Results and methodology: docs/benchmarks.md.
"""
