"""The counter store: atomic reserve / settle / release over every counter of a request.

A request is admitted by one `reserve` over all its **lines** — one per budget or rate
limit on its principal's path (key → user → team → org, and tags). The store checks every
line and changes nothing unless all of them fit::

    used + reserved + amount <= limit        (limit None: unlimited, still counted)

then adds each line's amount to its `reserved` and remembers the reservation until it is
settled, released, or expires. `settle` turns a reservation into what was really spent:
the reserved amounts go, the actual amounts are added to `used`.

Three kinds of line share this machinery:

- ``budget`` and ``rate`` lines count in a window (calendar or rolling, see `windows`);
  settle charges them the actual amount (requests per minute: 1; tokens per minute: the
  real tokens; a budget: the real weighted charge).
- ``concurrency`` lines have no window and are never charged: their amount (1) is held
  while the request is in flight and given back at settle.

Guarantees every implementation keeps (tests check both stores against the same model):

- **All or none**: a failed reserve changes no counter, and says which line failed.
- **Never over-admit**: right after any successful reserve, every limited line has
  ``used + reserved <= limit``.
- **Overshoot is bounded**: settle charges the actual amount even when it exceeds what was
  reserved (a client that set no max_tokens got a default reservation; what it generated is
  still billed). A line can thus pass its limit, but only by what requests in flight at the
  moment it filled overshot their reservations: ``used <= limit + sum(max(0, actual -
  reserved))`` over those requests, so one request's overshoot when requests run one at a
  time. Once ``used`` reaches the limit, nothing more is admitted.
- **Settle is idempotent**: settling (or releasing) a reservation again within the store's
  tombstone period changes nothing; a settle after release changes nothing.
- **Crashed replicas cost nothing forever**: a reservation never settled expires after its
  TTL and the next reserve or settle that touches its counter gives the amount back (no
  sweeper). A settle that arrives after its reservation expired still charges `used`
  (the tokens were really spent) — but meanwhile the capacity was lent out again, so
  reservation TTLs must outlast the longest request.
- **Charged at the start**: a request counts in the window instance (or rolling bucket) that
  held the instant it was admitted, even when it finishes after that window ended.

Money in counters is integer pico-USD; stores must keep it exact well beyond 2**53.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from tollway.budgets.windows import Window

__all__ = [
    "CounterState",
    "CounterStore",
    "Denial",
    "Line",
    "LineKind",
    "Reservation",
    "ReserveOutcome",
    "StoreUnavailable",
    "check_amounts",
]

LineKind = Literal["budget", "rate", "concurrency"]


class StoreUnavailable(Exception):
    """The counter store could not be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Line:
    """One counter a request can be reserved against, and its limit.

    `key` names the counter family (budget id, rate-limit id); the store appends the window
    instance or bucket itself. A concurrency line has no window. Lines describe counters,
    not requests, so callers build them once; each reserve brings its own amounts.
    """

    key: str
    window: Window | None
    limit: int | None
    kind: LineKind = "budget"

    def __post_init__(self) -> None:
        if self.limit is not None and (type(self.limit) is not int or self.limit < 0):
            raise ValueError(f"line {self.key!r}: limit must be None or a non-negative int")
        if (self.kind == "concurrency") != (self.window is None):
            raise ValueError(f"line {self.key!r}: exactly the concurrency lines have no window")


class CounterState(NamedTuple):
    """A counter as the store saw it: spent, held by requests in flight, and its window.

    Window bounds are 0 for a concurrency gauge; for a rolling window they span its buckets.
    """

    used: int
    reserved: int
    window_start_ms: int = 0
    window_end_ms: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    """A successful reserve: what to hand back to `settle` or `release`.

    `states` are the lines' counters as found *before* this reservation's `amounts` were
    added, at the store's clock `now_ms`; `expires_at_ms` is when the store gives the
    amounts back on its own if nobody settles.
    """

    id: str
    lines: tuple[Line, ...]
    amounts: tuple[int, ...]
    states: tuple[CounterState, ...]
    now_ms: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a reserve was refused: the first line that did not fit, and its counter."""

    index: int
    line: Line
    amount: int
    state: CounterState
    now_ms: int
    retry_at_ms: int | None = None  # earliest instant enough of the window will have passed


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    """Either a reservation or a denial."""

    reservation: Reservation | None = None
    denial: Denial | None = None

    @property
    def ok(self) -> bool:
        return self.reservation is not None


def check_amounts(lines: Sequence[Line], amounts: Sequence[int]) -> None:
    """Raise ValueError unless there is one non-negative int amount per line, keys distinct."""
    if len(amounts) != len(lines):
        raise ValueError("reserve needs one amount per line")
    for amount in amounts:
        if type(amount) is not int or amount < 0:
            raise ValueError(f"amounts must be non-negative ints, got {amount!r}")
    if len(lines) > 1 and len({line.key for line in lines}) != len(lines):
        raise ValueError("each line of a reservation must have its own key")


class CounterStore(Protocol):
    """Atomic counters for budgets and rate limits (in-process or Redis)."""

    async def reserve(
        self, lines: Sequence[Line], amounts: Sequence[int], reservation_id: str, ttl_ms: int
    ) -> ReserveOutcome:
        """Reserve each line's amount, or none of them (see the module docstring)."""
        ...

    async def settle(self, reservation: Reservation, actual: Sequence[int]) -> None:
        """Replace the reservation by the actual amounts (one per line); idempotent.

        Concurrency lines ignore their actual amount.
        """
        ...

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation without charging anything; idempotent, final."""
        ...

    async def usage(self, lines: Sequence[Line]) -> dict[str, CounterState]:
        """The current state of each line's counter, by line key."""
        ...

    async def set_used(self, line: Line, used: int) -> None:
        """Overwrite the current window's `used` (reconciliation from the ledger).

        For a rolling window the whole amount is put in the current bucket, so it counts
        for one full window from now: reconciling errs on the side of the limit.
        """
        ...
