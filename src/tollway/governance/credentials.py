"""Provider secrets recognised by their prefix and structure: API keys, tokens, private keys.

Python's regex engine is fast only when a pattern starts with a literal: it then skips
through the text in C and tries the pattern only where the literal occurs. So every
pass here starts with one, and prefixes that share a character share a pass: one pass
anchored on ``-`` looks back for ``sk``, ``glpat``, ``xoxb``, ``tw`` (and reads
``-----BEGIN``), one anchored on ``_`` looks back for ``ghp``, ``github``, ``sk_live``,
``npm``. Word boundaries are look-behinds placed after the literal for the same reason,
and possessive quantifiers keep every match linear. A candidate becomes a finding only
if its body also looks like a key (length, character mix, no placeholder words), which
is what keeps ``sk-learn`` and ``ghp_XXXX...`` out.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from tollway.governance.checks import (
    count_digits,
    has_lower,
    has_upper,
    is_hex,
    is_placeholder,
    jwt_header_ok,
    letters_and_digits,
    mixed_case_alnum,
)
from tollway.governance.findings import Finding, finding

_TOKEN = r"A-Za-z0-9_\-"  # characters of a token, for boundaries
_PEM_MAX = 64 * 1024  # longest private key block looked for

# Placeholder words that disqualify a provider token (AWS keys are exempt: AWS's own
# documented example keys end in EXAMPLE and are well-formed, so they are reported).
_FAKE_PARTS = ("your", "xxxx", "here", "example", "placeholder", "redacted", "dummy", "<", "{")


def _plausible(body: str) -> bool:
    """Enough distinct characters and no placeholder words."""
    if len(set(body)) < 8:
        return False
    low = body.lower()
    return not any(part in low for part in _FAKE_PARTS)


_Handler = Callable[[str, "re.Match[str]", list[Finding]], None]

# --- one pass over "-": OpenAI and Anthropic (sk-), GitLab (glpat-), Slack (xoxb-),
# Tollway (tw-), PEM private keys (-----BEGIN): one scan of the text instead of five

_B = rf"(?<![{_TOKEN}])"  # the prefix starts a token
_DASH = re.compile(
    rf"-(?:(?<=[a-z]-)(?:(?<={_B}sk-)(?:(?P<ant>ant-[a-z]+\d*-)|(?:proj-|svcacct-|admin-)?)"
    rf"(?P<sk>[{_TOKEN}]{{20,300}}+)(?![{_TOKEN}])"
    rf"|(?:(?<={_B}gl(?:pat|ptt|cbt|imt)-)|(?<={_B}gl(?:dt|rt|ft)-)|(?<={_B}glsoat-))"
    rf"(?P<gl>[{_TOKEN}]{{20,255}}+)(?![{_TOKEN}])"
    rf"|(?<={_B}xox[abposre]-)(?P<xox>[A-Za-z0-9\-]{{20,255}}+)(?![{_TOKEN}])"
    rf"|(?<={_B}tw-)(?:admin-)?(?P<tw>[{_TOKEN}]{{43}})(?![{_TOKEN}]))"
    r"|(?P<pem>----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----))"
)


def _prefix_start(text: str, dash: int) -> int:
    """Where the token whose first dash is at `dash` starts."""
    start = dash
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    return start


def _sk(text: str, m: re.Match[str], out: list[Finding]) -> None:
    body = m["sk"]
    start = m.start() - 2
    if m["ant"]:
        if len(body) >= 32 and letters_and_digits(body) and _plausible(body):
            out.append(finding("anthropic_key", start, m.end()))
        return
    if not _plausible(body):
        return
    if mixed_case_alnum(body) or (len(body) >= 32 and is_hex(body) and letters_and_digits(body)):
        out.append(finding("openai_key", start, m.end()))


def _dash(text: str, m: re.Match[str], out: list[Finding]) -> None:
    if m["sk"] is not None:
        _sk(text, m, out)
    elif m["gl"] is not None:
        if _plausible(m["gl"]):
            out.append(finding("gitlab_token", _prefix_start(text, m.start()), m.end()))
    elif m["xox"] is not None:
        body = m["xox"]
        if count_digits(body) >= 8 and _plausible(body):
            out.append(finding("slack_token", m.start() - 4, m.end()))
    else:
        body = m["tw"]
        # Random urlsafe text has both cases; Tailwind-style `tw-` class names never do.
        if has_upper(body) and has_lower(body) and _plausible(body):
            out.append(finding("tollway_key", m.start() - 2, m.end()))


# --- one pass over "_": Stripe (sk_live_, rk_live_, sk_test_), GitHub (ghp_, gho_, ghu_,
# ghs_, ghr_, github_pat_), npm (npm_)

_UNDERSCORE = re.compile(
    rf"_(?<=[a-z]_)(?:(?<={_B}[sr]k_)(?:live|test)_(?P<stripe>[A-Za-z0-9]{{16,255}}+)"
    rf"|(?<={_B}gh[pousr]_)(?P<gh>[A-Za-z0-9]{{36,251}}+)"
    rf"|(?<={_B}github_)pat_(?P<ghpat>[A-Za-z0-9_]{{50,255}}+)"
    rf"|(?<={_B}npm_)(?P<npm>[A-Za-z0-9]{{36}}))(?![{_TOKEN}])"
)
# group -> (kind, length of the prefix before the matched "_")
_UNDERSCORE_KINDS = {
    "stripe": ("stripe_key", 2),
    "gh": ("github_token", 3),
    "ghpat": ("github_token", 6),
    "npm": ("npm_token", 3),
}


def _underscore(text: str, m: re.Match[str], out: list[Finding]) -> None:
    group = m.lastgroup or ""
    body = m[group]
    if letters_and_digits(body) and _plausible(body):
        kind, back = _UNDERSCORE_KINDS[group]
        out.append(finding(kind, m.start() - back, m.end()))


# --- AWS access key ids, Google API keys: AKIA... ASIA... AIza...

_A = re.compile(
    rf"A(?<![{_TOKEN}]A)(?:(?P<aws>[KS]IA[A-Z0-9]{{16}})(?![A-Za-z0-9])"
    rf"|Iza(?P<google>[{_TOKEN}]{{35}})(?![{_TOKEN}]))"
)
# An AWS secret access key written right after its key id (CSV rows, "id / secret" pairs).
_AWS_SECRET_NEXT = re.compile(r"[\s,;|:=\"'/]{1,8}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")


def _a(text: str, m: re.Match[str], out: list[Finding]) -> None:
    if m["aws"]:
        if len(set(m["aws"])) >= 8:
            out.append(finding("aws_access_key_id", m.start(), m.end()))
            nxt = _AWS_SECRET_NEXT.match(text, m.end())
            if nxt and mixed_case_alnum(nxt[1]):
                out.append(finding("aws_secret_access_key", nxt.start(1), nxt.end(1)))
    elif letters_and_digits(m["google"]) and _plausible(m["google"]):
        out.append(finding("google_api_key", m.start(), m.end()))


# --- SendGrid (SG.x.y) and Twilio API keys (SK + 32 hex)

_S = re.compile(
    rf"S(?<![{_TOKEN}]S)(?:G\.(?P<sg>[{_TOKEN}]{{22}}\.[{_TOKEN}]{{43}})(?![{_TOKEN}])"
    rf"|K(?P<twilio>[0-9a-f]{{32}})(?![A-Za-z0-9]))"
)


def _s(text: str, m: re.Match[str], out: list[Finding]) -> None:
    if m["sg"]:
        if _plausible(m["sg"]):
            out.append(finding("sendgrid_key", m.start(), m.end()))
    elif letters_and_digits(m["twilio"]) and len(set(m["twilio"])) >= 8:
        out.append(finding("twilio_api_key", m.start(), m.end()))


# --- PEM private keys (found by the dash pass)

# When the END line is missing (a truncated paste), the block runs over base64 and header lines.
_PEM_LINE = re.compile(r"[A-Za-z0-9+/=]{40}")
_PEM_BODY = re.compile(r"(?:(?:\s|\\n)*+(?:[A-Za-z0-9+/=]{16,}+|[A-Za-z-]{3,}+: [^\n]*+))*+")


def _pems(text: str, begins: list[re.Match[str]], out: list[Finding]) -> None:
    """Each BEGIN line runs to the next END line (looked up once per text) or over its body.

    A block whose body holds no base64 line (``...`` in documentation) is not a key.
    """
    ends = _find_all(text, "-----END ")
    for m in begins:
        i = bisect.bisect_left(ends, m.end())
        if i < len(ends) and ends[i] - m.end() <= _PEM_MAX:
            body_end = ends[i]
            close = text.find("-----", ends[i] + 9, ends[i] + 80)
            end = close + 5 if close >= 0 else ends[i] + 9
        else:
            body = _PEM_BODY.match(text, m.end())
            body_end = end = body.end() if body else m.end()
        if _PEM_LINE.search(text, m.end(), body_end):
            out.append(finding("private_key", m.start(), end))


def _find_all(text: str, needle: str) -> list[int]:
    found: list[int] = []
    i = text.find(needle)
    while i >= 0:
        found.append(i)
        i = text.find(needle, i + len(needle))
    return found


# --- JSON Web Tokens: eyJ... (anchored on the rare "J", the prefix looked back at)

# header.payload.signature, or the five parts of an encrypted JWT; a sentence may end after it.
_JWT = re.compile(
    rf"J(?<={_B}eyJ)[{_TOKEN}]{{7,}}+\.[{_TOKEN}]{{2,}}+\.[{_TOKEN}]*+(?:\.[{_TOKEN}]++){{0,2}}"
    rf"(?![{_TOKEN}]|\.[{_TOKEN}])"
)


def _jwt(text: str, m: re.Match[str], out: list[Finding]) -> None:
    start = m.start() - 2
    if jwt_header_ok(text[start : text.index(".", start)]):
        out.append(finding("jwt", start, m.end()))


# --- credentials in URLs (scheme://user:password@host) and Slack webhooks

_URL = re.compile(
    r"://(?:[^\s:/?#@\[\]\"'<>]{0,128}+:(?P<pw>[^\s/?#@\[\]\"'<>]{1,256}+)@(?=[A-Za-z0-9\[])"
    r"|hooks\.slack\.com/services/T[A-Z0-9]{6,}+/B[A-Z0-9]{6,}+/[A-Za-z0-9]{20,}+)"
)
_URL_FAKE_PASSWORDS = frozenset({"pass", "password", "passwd", "pwd", "pw", "p", "secret"})


def _url(text: str, m: re.Match[str], out: list[Finding]) -> None:
    scheme = m.start()
    while scheme > 0 and (text[scheme - 1].isalnum() or text[scheme - 1] in "+.-"):
        scheme -= 1
    if scheme == m.start() or not text[scheme].isalpha():
        return
    pw = m["pw"]
    if pw is None:
        out.append(finding("slack_webhook", scheme, m.end()))
        return
    if pw.lower() in _URL_FAKE_PASSWORDS or is_placeholder(pw) or (pw.isdigit() and len(pw) <= 5):
        return
    out.append(finding("url_password", m.start("pw"), m.end("pw")))


# (pattern, handler, a character every match contains: the pass is skipped if it is absent)
_PASSES: tuple[tuple[re.Pattern[str], _Handler, str], ...] = (
    (_UNDERSCORE, _underscore, "_"),
    (_A, _a, "A"),
    (_S, _s, "S"),
    (_JWT, _jwt, "J"),
    (_URL, _url, ":"),
)


def find_credentials(text: str, out: list[Finding]) -> None:
    """Append the provider secrets in `text` to `out`."""
    if "-" in text:
        begins: list[re.Match[str]] = []
        for m in _DASH.finditer(text):
            if m["pem"] is None:
                _dash(text, m, out)
            else:
                begins.append(m)
        if begins:
            _pems(text, begins, out)
    for pattern, handler, needle in _PASSES:
        if needle in text:
            for m in pattern.finditer(text):
                handler(text, m, out)
