"""Scan a prompt for secrets and personal data, and redact what was found.

    findings = scan(text)          # Findings: .secrets, .pii, .kinds, .data_class
    clean = redact(text, findings)  # each finding replaced by [REDACTED:<kind>]

The scan is about fifteen regex passes, each starting with a literal so the engine
skips ahead at C speed, plus one `translate` that folds case and digits for the keyword
and number passes; a pass whose required character is absent is skipped. Candidates are
confirmed in Python (checksums, number plans, placeholder rules), so the cost is linear
in the text and grows with what is found, not with how hard the text tries.
"""

from __future__ import annotations

from collections.abc import Iterable

from tollway.governance.assignments import find_assignments
from tollway.governance.credentials import find_credentials
from tollway.governance.findings import DataClass, Finding, Findings, merge
from tollway.governance.personal import find_emails, find_numbers

# ASCII upper case to lower case and every ASCII digit to "0", one character for one.
_UPPER_AND_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789"
_LOWER_AND_ZEROS = "abcdefghijklmnopqrstuvwxyz000000000"
_FOLD = str.maketrans(_UPPER_AND_DIGITS, _LOWER_AND_ZEROS)
_FOLD_BYTES = bytes.maketrans(_UPPER_AND_DIGITS.encode(), _LOWER_AND_ZEROS.encode())


def fold(text: str) -> str:
    """`text` with ASCII upper case folded to lower case and digits to "0" (same length)."""
    if text.isascii():  # bytes.translate skips str.translate's per-call cache set-up
        return text.encode("ascii").translate(_FOLD_BYTES).decode("ascii")
    return text.translate(_FOLD)


def scan(text: str) -> Findings:
    """Find the secrets and personal data in `text`; overlapping findings are merged."""
    out: list[Finding] = []
    find_credentials(text, out)
    if "@" in text:
        find_emails(text, out)
    folded = fold(text)
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
    """``secret``, ``pii`` or ``clean``: the highest class of data found in `text`.

    The same answer as ``scan(text).data_class``, but it stops at the first class found:
    a secret anywhere makes the personal-data passes unnecessary.
    """
    out: list[Finding] = []
    find_credentials(text, out)
    if out:
        return "secret"
    folded = fold(text)
    find_assignments(text, folded, out)
    if out:
        return "secret"
    if "@" in text:
        find_emails(text, out)
    if not out and "0" in folded:
        find_numbers(text, folded, out)
    return "pii" if out else "clean"
