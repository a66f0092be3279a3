"""Secret and PII detection on the hot path: µs per scan for typical prompt sizes.

    python -m benchmarks.governance

Prompts are English prose, Python code, JSON and log lines in a fixed mix, at 1 KB,
16 KB and 128 KB; "with findings" plants one secret or piece of personal data every
~2 KB (keys, a JWT, a card, a phone number, an email...). Also times pathological
inputs (128 KB of one character, or of a repeated trigger). Figures are the best of
25 short repeats on this machine, in µs per call.
"""

from __future__ import annotations

import base64
import json
import random
import re
import timeit
from collections.abc import Callable
from functools import partial

from rich.console import Console

from benchmarks.report import cpu_reference_ms, machine, table
from tollway.governance import data_class, redact, scan

PROSE = """\
The quarterly report shows that the migration to the new billing service went better than \
expected. Most teams moved their workloads within two sprints, and the error budget held steady \
throughout. We still need to retire the legacy queue, which is scheduled for the end of the month. \
Please review the attached design before Friday; in particular, check whether the retry policy \
is too aggressive for the payment provider and whether we should cap concurrency at 32 workers.
Can you help me refactor this function so it is easier to test? I would like to separate the \
parsing from the network calls and add type hints. Also explain why it sometimes hangs.
"""

CODE = """\
import asyncio
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.25


async def fetch_all(session, urls: list[str], policy: RetryPolicy) -> list[dict]:
    results = []
    for url in urls:
        for attempt in range(policy.attempts):
            try:
                async with session.get(url, timeout=10) as resp:
                    resp.raise_for_status()
                    results.append(await resp.json())
                    break
            except Exception as exc:
                logger.warning("attempt %d for %s failed: %s", attempt, url, exc)
                await asyncio.sleep(policy.backoff_s * 2**attempt)
    return results


def connect(settings):
    password = os.environ["DB_PASSWORD"]
    return psycopg.connect(host=settings.db_host, user="app", password=password)
"""

JSON_DOC = json.dumps(
    {
        "model": "gpt-4o-mini",
        "max_tokens": 1024,
        "temperature": 0.2,
        "id": "8f14e45f-ceea-467f-a0e6-55b7a0c1d2e3",
        "created": 1795877982,
        "version": "1.2.3.4",
        "sha": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    },
    indent=2,
)

LOG = """\
2024-05-14T10:22:31.512Z INFO  worker-7 processed batch rows=1532 took=412ms order=ORD-2024-558812
2024-05-14T10:22:32.001Z ERROR worker-3 upstream 10.0.12.7:8443 returned 503 after 3 retries
Traceback (most recent call last):
  File "/srv/app/handlers.py", line 88, in handle
    return await self.client.post(path, json=payload)
"""


def _jwt() -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '42', 'iat': 1700000000})}.c2ln"


PLANTED = (
    "Here is my key sk-proj-Ab3dEf9hIjKlMn0pQrStUvWxYz1234567890abcdEFGH please rotate it.\n",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    f"Authorization: Bearer {_jwt()}\n",
    "The customer paid with 4111 1111 1111 1111 and can be reached at +44 20 7946 0958.\n",
    "Contact jane.doe@acme-corp.com about the invoice.\n",
    'DATABASE_URL = "postgres://app:Xk9pQ2vLr7@db.internal:5432/app"\n',
    "export GITHUB_TOKEN=ghp_R4nd0mL00k1ngT0k3nV4lu3AbCdEfGh12345\n",
)


def prompt(size: int, *, findings: bool, seed: int = 7) -> str:
    """A realistic prompt of `size` characters; with findings, one planted every ~2 KB.

    The same seed gives the same prose, code, JSON and logs with or without findings.
    """
    pieces, planted = random.Random(seed), random.Random(seed + 1)
    parts: list[str] = []
    n = 0
    since = 2048
    while n < size:
        piece = pieces.choice((PROSE, PROSE, CODE, JSON_DOC, LOG))
        if findings and since >= 2048:
            piece = planted.choice(PLANTED) + piece
            since = 0
        parts.append(piece)
        n += len(piece)
        since += len(piece)
    text = "".join(parts)
    cut = text.rfind("\n", 0, size)
    return text[: cut + 1 if cut > 0 else size]


PATHOLOGICAL = {
    "a": "a",
    "digits": "1234567890",
    "@": "@",
    "-": "-",
    "spaces+digits": "11 ",
    "a@b.co": "a@b.co ",
    "password=": "password=",
    "sk-": "sk-",
    "-----BEGIN": "-----BEGIN PRIVATE KEY-----",
    "eyJ.": "eyJhbGci.",
    "://": "://a:b@",
    "+1": "+1 ",
}


def best_us(fn: Callable[[], object], number: int, repeat: int = 25) -> float:
    """Best of many short repeats, µs per call: the minimum filters out a busy neighbour."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    console = Console()
    info = machine()
    console.print(
        f"[dim]{info['date']} · {info['nproc']} x {info['cpu']} · Python {info['python']} · "
        f"load {info['loadavg_at_start']} · CPU yardstick {cpu_reference_ms()} ms "
        f"(higher = slower right now)[/]"
    )
    floor = re.compile("~")
    text = prompt(128 * 1024, findings=False)
    floor_us = best_us(partial(floor.findall, text), 20)
    console.print(
        f"[dim]one literal regex pass over 128 KB (the per-pass floor): {floor_us:.0f} µs[/]"
    )
    rows = []
    for label, size in (("1 KB", 1024), ("16 KB", 16 * 1024), ("128 KB", 128 * 1024)):
        number = max(2, 300_000 // size)
        for findings in (False, True):
            text = prompt(size, findings=findings)
            found = scan(text)
            scan_us = best_us(partial(scan, text), number)
            class_us = best_us(partial(data_class, text), number)
            redact_us = best_us(partial(redact, text, found), number)
            rows.append(
                [
                    label,
                    "yes" if findings else "no",
                    str(len(found)),
                    f"{scan_us:,.1f}",
                    f"{scan_us * 1000 / len(text):.2f}",
                    f"{class_us:,.1f}",
                    f"{redact_us:,.1f}",
                ]
            )
    console.print(
        table(
            "scan() per prompt",
            ["size", "planted", "findings", "scan µs", "ns/char", "data_class µs", "redact µs"],
            rows,
        )
    )
    rows = []
    for label, unit in PATHOLOGICAL.items():
        text = (unit * (128 * 1024 // len(unit) + 1))[: 128 * 1024]
        rows.append([label, f"{best_us(partial(scan, text), 1, repeat=7) / 1000:,.2f}"])
    console.print(table("pathological 128 KB inputs", ["repeated", "scan ms"], rows))


if __name__ == "__main__":
    main()
