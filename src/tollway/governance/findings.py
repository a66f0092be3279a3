"""What a scan found: `Finding` spans, the `Findings` of one text, and how overlaps merge.

Every kind belongs to one category (``secret`` or ``pii``) and has a rank: when two
findings overlap they become one span labelled with the higher-ranked kind, so a
provider-specific secret beats a generic ``password=`` match and any secret beats PII.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

Category = Literal["secret", "pii"]
DataClass = Literal["secret", "pii", "clean"]

# kind -> (category, rank); a higher rank wins an overlap.
KINDS: dict[str, tuple[Category, int]] = {
    # provider-specific secrets: recognised by prefix and structure
    "openai_key": ("secret", 30),
    "anthropic_key": ("secret", 30),
    "aws_access_key_id": ("secret", 30),
    "aws_secret_access_key": ("secret", 30),
    "github_token": ("secret", 30),
    "gitlab_token": ("secret", 30),
    "slack_token": ("secret", 30),
    "slack_webhook": ("secret", 30),
    "stripe_key": ("secret", 30),
    "google_api_key": ("secret", 30),
    "twilio_api_key": ("secret", 30),
    "twilio_auth_token": ("secret", 30),
    "sendgrid_key": ("secret", 30),
    "npm_token": ("secret", 30),
    "tollway_key": ("secret", 30),
    "private_key": ("secret", 30),
    "jwt": ("secret", 25),
    "url_password": ("secret", 25),
    # generic secrets: recognised by the name they are assigned to
    "bearer_token": ("secret", 20),
    "basic_auth": ("secret", 20),
    "password": ("secret", 20),
    "secret": ("secret", 20),
    "api_key": ("secret", 20),
    "token": ("secret", 20),
    # personal data
    "card_number": ("pii", 10),
    "iban": ("pii", 10),
    "ssn": ("pii", 10),
    "uk_nino": ("pii", 10),
    "email": ("pii", 10),
    "phone": ("pii", 5),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One secret or piece of personal data at `text[start:end]`."""

    kind: str
    category: Category
    start: int
    end: int


def finding(kind: str, start: int, end: int) -> Finding:
    """A `Finding` of `kind`, its category looked up."""
    return Finding(kind, KINDS[kind][0], start, end)


class Findings:
    """The findings of one text: disjoint, sorted by position."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Finding] = ()) -> None:
        self._items = tuple(items)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __getitem__(self, index: int) -> Finding:
        return self._items[index]

    def __repr__(self) -> str:
        return f"Findings({list(self._items)!r})"

    @property
    def secrets(self) -> tuple[Finding, ...]:
        """The findings in the ``secret`` category."""
        return tuple(f for f in self._items if f.category == "secret")

    @property
    def pii(self) -> tuple[Finding, ...]:
        """The findings in the ``pii`` category."""
        return tuple(f for f in self._items if f.category == "pii")

    @property
    def kinds(self) -> set[str]:
        """The distinct kinds found."""
        return {f.kind for f in self._items}

    @property
    def data_class(self) -> DataClass:
        """The highest class present: ``secret`` over ``pii`` over ``clean``."""
        if not self._items:
            return "clean"
        if any(f.category == "secret" for f in self._items):
            return "secret"
        return "pii"


_START = attrgetter("start")


def merge(raw: list[Finding]) -> Findings:
    """Sort findings and merge overlapping ones into their union, keeping the top-ranked kind."""
    if len(raw) < 2:
        return Findings(raw)
    raw.sort(key=_START)
    out: list[Finding] = []
    current = raw[0]
    for f in raw[1:]:
        if f.start >= current.end:
            out.append(current)
            current = f
            continue
        kind = current.kind
        if KINDS[f.kind][1] > KINDS[kind][1]:
            kind = f.kind
        current = finding(kind, current.start, max(current.end, f.end))
    out.append(current)
    return Findings(out)
