"""Validators that turn a pattern match into a finding: checksums, number plans, placeholders.

They run only on candidates (rare), so they favour being exact over being clever.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

# --- payment cards

# (IIN prefix range low, high, allowed lengths); prefixes compared on the leading digits.
_CARD_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, frozenset({16, 17, 18, 19})),
    (65, 65, frozenset({16, 17, 18, 19})),
    (300, 305, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (36, 36, frozenset({14, 15, 16, 17, 18, 19})),
    (38, 39, frozenset({16, 17, 18, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
    (5018, 5018, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),  # Maestro
    (5020, 5020, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (5038, 5038, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (5893, 5893, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (6304, 6304, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (6759, 6763, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_ok(digits: str) -> bool:
    """A payment card number: a known issuer prefix, a length that issuer uses, and Luhn."""
    n = len(digits)
    for low, high, lengths in _CARD_RANGES:
        width = len(str(low))
        if n in lengths and low <= int(digits[:width]) <= high:
            return luhn_ok(digits)
    return False


# --- US social security numbers


def ssn_ok(digits: str) -> bool:
    """Nine digits in an issuable range: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# --- IBAN

IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_ok(compact: str) -> bool:
    """An IBAN without spaces: known country, that country's length, and mod-97 == 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    if not compact.isascii() or not compact[:2].isupper() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


# --- UK national insurance numbers

_NINO_FIRST_BAD = frozenset("DFIQUV")
_NINO_SECOND_BAD = frozenset("DFIOQUV")
_NINO_PREFIX_BAD = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_ok(compact: str) -> bool:
    """Two allowed letters, six digits, a suffix A-D (spaces removed)."""
    if len(compact) != 9 or not compact.isascii():
        return False
    prefix, number, suffix = compact[:2], compact[2:8], compact[8]
    return (
        prefix.isalpha()
        and prefix.isupper()
        and prefix[0] not in _NINO_FIRST_BAD
        and prefix[1] not in _NINO_SECOND_BAD
        and prefix not in _NINO_PREFIX_BAD
        and number.isdigit()
        and suffix in "ABCD"
    )


# --- JSON Web Tokens


def jwt_header_ok(segment: str) -> bool:
    """The first JWT segment base64url-decodes to a JSON object naming an ``alg``."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str)


# --- shape of a random secret (regex probes: C speed on long values)

_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_DIGIT = re.compile(r"[0-9]")
_LETTER = re.compile(r"[A-Za-z]")
_NOT_HEX = re.compile(r"[^0-9A-Fa-f]")
_NOT_DIGIT = re.compile(r"[^0-9]+")
_SYMBOL_BUT_SEPARATORS = re.compile(r"[!-,/:-@\[-^`{-~]")  # without - . _


def has_upper(value: str) -> bool:
    """An ASCII upper case letter."""
    return _UPPER.search(value) is not None


def has_lower(value: str) -> bool:
    """An ASCII lower case letter."""
    return _LOWER.search(value) is not None


def has_digit(value: str) -> bool:
    """An ASCII digit."""
    return _DIGIT.search(value) is not None


def has_symbol(value: str) -> bool:
    """ASCII punctuation other than the word separators ``-``, ``.`` and ``_``."""
    return _SYMBOL_BUT_SEPARATORS.search(value) is not None


def count_digits(value: str) -> int:
    """How many ASCII digits."""
    return len(_NOT_DIGIT.sub("", value))


def mixed_case_alnum(value: str) -> bool:
    """Upper and lower case letters and a digit: what random base62/64 keys nearly always have."""
    return has_upper(value) and has_lower(value) and has_digit(value)


def is_hex(value: str) -> bool:
    """Only hexadecimal digits."""
    return _NOT_HEX.search(value) is None


def letters_and_digits(value: str) -> bool:
    """At least one ASCII letter and one digit."""
    return has_digit(value) and _LETTER.search(value) is not None


# --- placeholders

# Substrings (lower case) that mark a value as a stand-in rather than a secret.
_PLACEHOLDER_WORDS = (
    "your", "example", "placeholder", "changeme", "change_me", "change-me", "redacted",
    "dummy", "sample", "xxxx", "****", "...", "…", "•", "<", ">", "${", "{{", "}}", "%(", "$(",
    "todo", "fixme", "replace", "insert", "_here", "-here", "here_", "here-", "environ",
    "getenv", "process.env", "env(", "vault",
)  # fmt: skip
# The look-ahead on the words' first characters lets the engine skip the other positions.
_PLACEHOLDER_PARTS = re.compile(
    "(?=[" + "".join(sorted({re.escape(w[0]) for w in _PLACEHOLDER_WORDS})) + "])"
    "(?:" + "|".join(re.escape(w) for w in _PLACEHOLDER_WORDS) + ")"
)
# Whole values (lower case) that are not secrets.
_PLACEHOLDER_VALUES = frozenset(
    {
        "none", "null", "nil", "undefined", "true", "false", "yes", "no", "on", "off",
        "password", "passwd", "pass", "pwd", "pw", "secret", "token", "key", "apikey", "api_key",
        "api-key", "string", "str", "bytes", "text", "required", "optional", "hidden", "empty",
        "n/a", "na", "masked", "encrypted", "hashed", "sensitive", "protected", "invalid",
        "incorrect", "missing", "unknown", "default", "test", "testing", "foobar", "foo", "bar",
        "admin", "user", "username", "changeit", "letmein", "secretstr", "secretbytes",
    }
)  # fmt: skip
# A value starting with one of these is a reference, template or markup, not a literal.
REFERENCE_STARTS = tuple("$%{<[(@!&*#\\")
_NOT_FILLER = re.compile(r"[^*xX•.·\-_#0 ]")
_PLACEHOLDER_SPAN = 64


def is_placeholder(value: str) -> bool:
    """A stand-in such as ``YOUR_API_KEY``, ``<token>``, ``${DB_PASS}``, ``********``."""
    low = value[:_PLACEHOLDER_SPAN].lower()  # placeholder words come early; keys are long
    if low in _PLACEHOLDER_VALUES or value.startswith(REFERENCE_STARTS):
        return True
    if len(set(low)) <= 2 or _NOT_FILLER.search(value) is None:
        return True
    return _PLACEHOLDER_PARTS.search(low) is not None
