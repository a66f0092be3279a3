"""Personal data: email addresses, phone numbers, payment cards, US SSNs, IBANs, UK NI numbers.

Numbers are found on the *folded* text, where every ASCII digit is ``0`` and letters are
lower case, so each number format is a fixed string of zeros and separators and one
regex pass starting at the literal ``00`` finds every candidate (a digit group needs two
digits to be worth a look). Look-behinds placed after that literal reject groups inside
words, versions, hashes and ids; look-aheads reject dates and IP addresses; what is left
is classified in Python against the number plans, the Luhn check and mod-97.
"""

from __future__ import annotations

import re

from tollway.governance.callingcodes import has_calling_code
from tollway.governance.checks import card_ok, iban_ok, nino_ok, ssn_ok
from tollway.governance.findings import Finding, finding
from tollway.governance.tlds import TLDS

# --- email

_EMAIL = re.compile(
    r"@(?<=[A-Za-z0-9._%+\-]@)"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}(?P<tld>[A-Za-z]{2,24})"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _in_url(text: str, pos: int) -> bool:
    """`pos` is inside a URL: a "://" earlier in the same whitespace-free run."""
    scheme = text.rfind("://", max(0, pos - 256), pos)
    return scheme >= 0 and not any(ch.isspace() for ch in text[scheme:pos])


def find_emails(text: str, out: list[Finding]) -> None:
    """Append the email addresses in `text` to `out`."""
    for m in _EMAIL.finditer(text):
        if m["tld"].lower() not in TLDS:
            continue
        at = m.start()
        start = at
        floor = max(0, at - 64)
        while start > floor and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        local = text[start:at]
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        if text[start - 1 : start] in (":", "/") and _in_url(text, start):
            continue  # scheme://user@host, scheme://user:password@host: a URL's user
        if text[m.end() : m.end() + 1] == ":" and text[m.end() + 1 : m.end() + 2].strip():
            continue  # git@github.com:org/repo.git
        out.append(finding("email", start, m.end()))


# --- numbers

# A digit group preceded by one of these belongs to a word, version, path, id or amount.
_EXCL = r"0-9a-z_.,#/\\:+\-@$%=&"
_NUM_REST = (
    r"(?=(?:[ .\-/()]{0,2}+0){5})"  # seven digits at least
    r"(?!00[\-/.]00[\-/.]00(?!0))"  # 2024-05-14
    r"(?![\-/.]00[\-/.]0000(?!0))"  # 14/05/2024
    r"(?!0?\.0{1,3}\.0{1,3}\.0{1,3}(?![0.]))"  # 192.168.10.20
    r"(?:00[ \-]?0000[ \-]?0000[ \-]?0{1,4}(?:[ \-]0{1,3})?(?!0)"  # card 4-4-4-4(-3)
    r"|00[ \-]000000[ \-]0{4,5}(?!0)"  # card 4-6-5, 4-6-4
    r"|0\)[ .\-]?000[ .\-]0000(?![0-9a-z])"  # (415) 555-2671
    r"|0*+(?:[ .\-/]0++)*+(?![a-z_]))"  # anything else: a whole run at once, judged in Python
)
_NUMBER = re.compile(
    r"00(?<!000)(?:"  # rejects a pair inside a longer run first: the common, cheap case
    rf"(?<![{_EXCL}]00)(?<!0 00)(?P<num>{_NUM_REST})"  # not the middle of "3.157 750 248"
    rf"|(?<=(?<![{_EXCL}])0[\-. ]00)(?P<trunk>0[\-. ]000[\-. ]0000)(?![0-9a-z])"  # 1-800-555-0199
    r"|(?<=(?<![0-9a-z_])[a-z]{2}00)(?P<iban>(?:[ ]?[0a-z]{4}){2,7}+(?:[ ]?[0a-z]{1,3})?"
    r"(?![0-9a-z])|0000[a-d](?![0-9a-z]))"
    r"|(?<=(?<![0-9a-z_])[a-z]{2} 00)(?P<nino> 00 00 [a-d])(?![0-9a-z])"
    r")"
)
# E.164: + country code and subscriber number, any common grouping.
_PLUS = re.compile(
    r"\+(?<![0-9a-z_+)\]}.*/%^]\+)0{1,3}+(?:[ .\-]?\(0{1,4}\)|[ .\-/]?0{1,8}+){1,6}+"
    r"(?![0-9a-z_+*/^]|[ .\-]0)"
)
_GROUP = re.compile(r"[0-9]+")
_PHONE_WORDS = re.compile(r"\b(?:phone|tel|mobile|cell|call|sms|whatsapp|fax|dial)")
_CARD_WORDS = re.compile(
    r"card|credit|debit|visa|master|amex|american express|discover|jcb|diners|unionpay|maestro"
    r"|payment|\bpan\b|\bcc|number|billing|charge"
)
_SSN_WORDS = re.compile(r"\bssn|social security|social sec")
_CONTEXT = 40  # characters before a bare number searched for a keyword


def _near(words: re.Pattern[str], folded: str, start: int) -> bool:
    return words.search(folded, max(0, start - _CONTEXT), start) is not None


_MAX_CHARS = 40  # a longer run of digit groups is a table or a dump, not one number


class _Number:
    """A run of digit groups at text[start:end], split for classification."""

    __slots__ = ("digits", "end", "groups", "paren", "seps", "sizes", "start")

    def __init__(self, text: str, start: int, end: int) -> None:
        raw = text[start:end]
        self.groups = _GROUP.findall(raw)
        self.digits = "".join(self.groups)
        self.sizes = tuple(len(g) for g in self.groups)
        self.seps = _GROUP.split(raw)[1:-1]
        self.start = start
        self.end = end
        # (415) 555-2671: the span takes the parenthesis, the separator counts as a space.
        self.paren = start > 0 and text[start - 1] == "(" and raw[len(self.groups[0]) :][:1] == ")"
        if self.paren:
            self.start -= 1
            self.seps[0] = self.seps[0][1:] or " "

    def one_separator(self, allowed: str) -> bool:
        return len(set(self.seps)) == 1 and self.seps[0] in allowed


def _card(n: _Number, folded: str) -> bool:
    if not 13 <= len(n.digits) <= 19 or n.paren:
        return False
    sizes = n.sizes
    if len(sizes) == 1 and not _near(_CARD_WORDS, folded, n.start):
        return False  # a bare run of digits is a seed, an id or a count unless called a card
    if len(sizes) > 1:
        if not n.one_separator(" -"):
            return False
        grouped_by_four = len(sizes) >= 3 and all(s == 4 for s in sizes[:-1]) and sizes[-1] <= 4
        if not (grouped_by_four or sizes in ((4, 6, 5), (4, 6, 4))):
            return False
    return card_ok(n.digits)


def _ssn(n: _Number, folded: str) -> bool:
    if n.paren or not ssn_ok(n.digits) or n.sizes not in ((3, 2, 4), (9,)):
        return False
    return n.seps == ["-", "-"] or _near(_SSN_WORDS, folded, n.start)


def _nanp(n: _Number) -> bool:
    """North American: (NXX) NXX-XXXX, area code and exchange not starting with 0 or 1."""
    d = n.digits
    return (
        n.sizes == (3, 3, 4)
        and d[0] in "23456789"
        and d[3] in "23456789"
        and (n.one_separator(" -.") or n.seps == [" ", "-"])  # 415 555-2671, (415) 555-2671
    )


def _national(n: _Number) -> bool:
    """European national format: trunk 0, 9-12 digits in groups of 2-8, one separator."""
    d = n.digits
    if d[0] != "0" or d[1] == "0" or not 9 <= len(d) <= 12 or n.paren or len(n.sizes) < 2:
        return False
    sizes = n.sizes
    if not (2 <= sizes[0] <= 5 and all(2 <= s <= 8 for s in sizes)) or sizes == (5, 4):
        return False  # an area code has 2-5 digits; 5-4 is a US ZIP+4 code
    if sizes[:2] == (2, 2) and sizes != (2, 2, 2, 2, 2):
        return False  # 08-01-2024: a date
    return n.one_separator(" -/") or (n.one_separator(".") and n.sizes == (2, 2, 2, 2, 2))


def _classify(text: str, folded: str, start: int, end: int) -> tuple[str, int, int] | None:
    """The kind of number at text[start:end] and its span, or None."""
    if end - start > _MAX_CHARS:
        return None  # a table, a dump or a long id: no single number is that long
    n = _Number(text, start, end)
    if _card(n, folded):
        return "card_number", n.start, n.end
    if _ssn(n, folded):
        return "ssn", n.start, n.end
    if _nanp(n):
        lead = n.start
        if not n.paren and text[max(0, lead - 2) : lead] in ("1 ", "1-", "1."):
            before = folded[lead - 3 : lead - 2]
            if not (before.isalnum() or before == "+"):
                lead -= 2  # 1 415 555 2671
        return "phone", lead, n.end
    if len(n.groups) == 1:
        if len(n.digits) in (10, 11) and _near(_PHONE_WORDS, folded, n.start):
            return "phone", n.start, n.end
        return None
    if _national(n):
        return "phone", n.start, n.end
    if len(n.groups) >= 4 and len(n.digits) > 13:  # a card followed by an expiry or more digits
        cut = start + len(text[start:end].rstrip("0123456789")) - len(n.seps[-1])
        return _classify(text, folded, start, cut)
    return None


def _plus(text: str, start: int, end: int) -> tuple[str, int, int] | None:
    groups = _GROUP.findall(text[start:end])
    digits = "".join(groups)
    if not 8 <= len(digits) <= 15 or not has_calling_code(digits):
        return None
    if digits[0] == "1" and (len(digits) != 11 or digits[1] in "01"):
        return None  # +1: the North American plan, ten digits, area code from 2 to 9
    if len(groups) > 1 and max(len(g) for g in groups) > 10:
        return None  # +1.4142135623731: a number, not a phone
    if len(groups) == 2 and len(groups[1]) < 10 and text[start + 1 + len(groups[0])] == ".":
        return None  # +1.12345679
    return "phone", start, end


def find_numbers(text: str, folded: str, out: list[Finding]) -> None:
    """Append the cards, phone numbers, SSNs, IBANs and NI numbers in `text` to `out`."""
    for m in _NUMBER.finditer(folded):
        group = m.lastgroup
        start, end = m.start(), m.end()
        if group == "num" or (group == "trunk" and text[start - 2] == "1"):
            got = _classify(text, folded, start, end)
            if got and group == "trunk" and text[start - 1] != text[end - 5]:
                got = None  # 1.319 590 8951: the separators of a trunk prefix match the rest
            if got is not None:
                out.append(finding(*got))
        elif group == "iban":
            compact = text[start - 2 : end].replace(" ", "")
            if len(compact) == 9:
                if nino_ok(compact):
                    out.append(finding("uk_nino", start - 2, end))
            elif iban_ok(compact):
                out.append(finding("iban", start - 2, end))
        elif group == "nino" and nino_ok(text[start - 3 : end].replace(" ", "")):
            out.append(finding("uk_nino", start - 3, end))
    if "+" in folded:
        for m in _PLUS.finditer(folded):
            got = _plus(text, m.start(), m.end())
            if got is not None:
                out.append(finding(*got))
