"""`python -m tollway.providers.simulated --port P --ttft-ms X --tokens-per-s Y`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tollway.providers.simulated.config import SimConfig
from tollway.providers.simulated.server import run_standalone


def parse_args(argv: Sequence[str] | None = None) -> tuple[str, int, SimConfig]:
    """(host, port, config) from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tollway.providers.simulated",
        description="A simulated OpenAI + Anthropic API server (for tests and benchmarks).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="time to first token")
    parser.add_argument(
        "--tokens-per-s", type=float, default=0.0, help="output speed (0 = instantaneous)"
    )
    parser.add_argument("--default-output-tokens", type=int, default=32)
    parser.add_argument(
        "--models", default="", help="comma-separated model names to serve (default: any name)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-auth", action="store_true", help="accept requests without an API key")
    args = parser.parse_args(argv)
    config = SimConfig(
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        default_output_tokens=args.default_output_tokens,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        seed=args.seed,
        require_api_key=not args.no_auth,
    )
    return args.host, args.port, config


def main(argv: Sequence[str] | None = None) -> None:
    host, port, config = parse_args(argv)
    run_standalone(host, port, config)


if __name__ == "__main__":
    main()
