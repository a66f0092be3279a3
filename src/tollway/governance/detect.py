"""Scan a prompt for secrets and personal data, and redact what was found.

    findings = scan(text)          # Findings: .secrets, .pii, .kinds, .data_class
    clean = redact(text, findings)  # each finding replaced by [REDACTED:<kind>]

The scan is a fixed number of regex passes, each starting with a literal so the engine
skips ahead at C speed, plus one `str.translate` that folds case and digits for the
keyword and number passes; passes whose required character is absent are skipped.
Candidates are confirmed in Python (checksums, number plans, placeholder rules).
"""

from __future__ import annotations

from collections.abc import Iterable

from tollway.governance.assignments import find_assignments
from tollway.governance.credentials import find_credentials
from tollway.governance.findings import DataClass, Finding, Findings, merge
from tollway.governance.personal import find_emails, find_numbers

# ASCII upper case to lower case and every ASCII digit to "0", one character for one.
_FOLD = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789",
    "abcdefghijklmnopqrstuvwxyz000000000",
)


def scan(text: str) -> Findings:
    """Find the secrets and personal data in `text`; overlapping findings are merged."""
    out: list[Finding] = []
    find_credentials(text, out)
    if "@" in text:
        find_emails(text, out)
    folded = text.translate(_FOLD)
    find_assignments(text, folded, out)
    if "0" in folded:
        find_numbers(text, folded, out)
    return merge(out)


def redact(text: str, findings: Iterable[Finding] | None = None) -> str:
    """`text` with every finding replaced by ``[REDACTED:<kind>]`` (scans if not given)."""
    if findings is None:
        findings = scan(text)
    elif not isinstance(findings, Findings):
        findings = merge(list(findings))
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append(f"[REDACTED:{f.kind}]")
        pos = f.end
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def scan_and_redact(text: str) -> tuple[str, Findings]:
    """Scan `text` once; return the redacted text and the findings."""
    findings = scan(text)
    return redact(text, findings), findings


def data_class(text: str) -> DataClass:
    """``secret``, ``pii`` or ``clean``: the highest class of data found in `text`."""
    return scan(text).data_class
