"""A child process appending records through its own LedgerWriter, to be killed (-9).

It prints each record's id once `append` returned (the record is durable), so the test
knows exactly what was acknowledged before the kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import tollway

CHILD = textwrap.dedent(
    """
    import asyncio, itertools, os, sys, threading
    from tollway.ledger import Database, LedgerRecord, LedgerWriter

    url, prefix, count, stuck = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "stuck"

    async def main():
        database = Database(url)
        database.migrate()
        writer = LedgerWriter(database.engine, max_batch=64)
        await writer.start()
        assert writer.journaling
        if stuck:  # a database too slow to take anything: records stay in the journal
            never = threading.Event()
            writer._committer.commit = lambda records, **kw: never.wait()
        numbers = itertools.count() if count < 0 else iter(range(count))

        async def client():
            for n in numbers:
                rid = f"{prefix}-{n:09d}"
                record = LedgerRecord(
                    request_id=rid, started_at_ms=1767225600000 + n * 1000,
                    finished_at_ms=1767225600000 + n * 1000 + 5, key_id="k", user="u",
                    team="t", org="o", api="openai.chat", requested_model="m",
                    input_tokens=n, output_tokens=1, actual_cost_pusd=7,
                )
                await writer.append(record)
                os.write(1, (rid + "\\n").encode())  # only once durable

        await asyncio.gather(*(client() for _ in range(20)))
        os.write(1, b"all\\n")
        await asyncio.sleep(3600)  # alive until killed

    asyncio.run(main())
    """
)


class Child:
    """A process appending records through its own LedgerWriter; reports acknowledged ids."""

    def __init__(self, url: str, prefix: str, count: int, *, stuck: bool = False) -> None:
        src = str(Path(tollway.__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, prefix, str(count), "stuck" if stuck else "-"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        self.acknowledged: list[str] = []

    def read(self, until: int) -> None:
        """Read acknowledged ids until `until` of them (or "all") are seen."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while len(self.acknowledged) < until and time.monotonic() < deadline:
            line = self.process.stdout.readline().decode().strip()
            if not line or line == "all":
                break
            self.acknowledged.append(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        rest, errors = self.process.communicate(timeout=10)
        assert self.process.returncode == -signal.SIGKILL, errors.decode()[-2000:]
        # Lines still in the pipe were acknowledged before the kill too.
        self.acknowledged += [x for x in rest.decode().split("\n") if x and x != "all"]

    @property
    def writer_prefix(self) -> str:
        return f"{self.process.pid}-"
