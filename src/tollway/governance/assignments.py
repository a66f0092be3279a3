"""Secrets recognised by the name they are given: ``password=…``, ``"api_key": "…"``, Bearer, Basic.

The keyword search runs on the *folded* text (ASCII upper case folded to lower case,
digits to ``0``, same length), so one case-sensitive literal search per keyword covers
``PASSWORD``, ``dbPassword`` and ``db_password``. The value is read from the original
text, and most of the work is deciding what is *not* a secret: expressions
(``os.environ["DB_PASSWORD"]``, ``self.password``), type annotations (``password: str``),
templates and placeholders (``${DB_PASS}``, ``<your-key>``, ``********``, ``YOUR_API_KEY``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from tollway.governance.checks import (
    REFERENCE_STARTS,
    has_digit,
    has_symbol,
    is_hex,
    is_placeholder,
    letters_and_digits,
)
from tollway.governance.findings import Finding, finding

# After the keyword: an optional closing quote or bracket, then the assignment operator,
# then not a value that is plainly code or a reference (rejected here, before any Python runs):
# $VAR, ${...}, <...>, [...], self.x, os.environ, or a credential name (password=password).
_OP = (
    r"""(?P<close>["'\]]{0,2}+)(?P<gap>[ \t]{0,3}+)(?P<op>=>|:=|=(?![=~])|:(?![:/\\]))"""
    r"""(?![ \t]{0,3}+["'`]?+(?:[$%{<\[(@!&*#\\]|(?:self|os|env|process|this|cls|args|config"""
    r"""|settings)\.|(?:p(?:ass(?:word|wd)?|wd)|secret|token|(?:api_?)?key)(?![a-z0-9])))"""
)

_PASSWORD = re.compile(r"p(?:ass(?:word|wd|phrase)?|wd)" + _OP)
_SECRET = re.compile(r"secret(?:[_\-.]?(?:access[_\-.]?)?key)?" + _OP)
_KEY = re.compile(r"key" + _OP)
_TOKEN = re.compile(r"token" + _OP)
_PASSWORD_FLAG = re.compile(r"--pass(?:word|wd)?[ \t]++")  # mysql --password hunter2
_AUTH_HEADER = re.compile(
    r"b(?:earer[ \t]++(?P<tok>[a-z0-9\-._~+/]{16,1024}+=*+)(?![a-z0-9\-._~+/=])"
    r"|asic[ \t]++(?P<basic>[a-z0-9+/]{8,1024}+={0,2}+)(?![a-z0-9\-._~+/=]))"
)

# A quoted value, or a bare one: up to a delimiter; "=" only as base64 padding at its end.
_DELIMITERS = r"""\s"'`,;&|)\]}>"""
_VALUE = re.compile(
    r"""[ \t]{0,3}+(?:"(?P<dq>[^"\\\n]{1,200}+)"|'(?P<sq>[^'\\\n]{1,200}+)'"""
    r"""|`(?P<bq>[^`\\\n]{1,200}+)`"""
    rf"""|(?P<bare>[^{_DELIMITERS}=]{{1,200}}+(?:={{1,2}}+(?![^{_DELIMITERS}]))?))"""
)
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0_.-")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORD_SPLIT = re.compile(r"[_.\-]+|(?<=[a-z0-9])(?=[A-Z])")
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_CONST_NAME = re.compile(r"[A-Z][A-Z0-9]*_[A-Z0-9_]*")
_CODE_WORDS = frozenset(
    {"lambda", "await", "async", "new", "function", "self", "this", "not", "None", "null", "nil"}
)

# The word in front of `key` that makes it a credential (`api_key`, `STRIPE_KEY`, `apiKey`...).
_KEY_QUALIFIERS = frozenset(
    {
        "api", "apikey", "secret", "access", "private", "auth", "client", "signing", "encryption",
        "master", "subscription", "license", "licence", "consumer", "app", "service", "account",
        "admin", "write", "deploy", "webhook", "session", "shared", "hmac", "jwt", "bot", "prod",
        "live", "openai", "anthropic", "stripe", "sendgrid", "mailgun", "twilio", "google",
        "gemini", "azure", "aws", "cohere", "mistral", "groq", "replicate", "huggingface", "hf",
        "pinecone", "algolia", "datadog", "dd", "newrelic", "sentry", "slack", "github", "gitlab",
        "firebase", "supabase", "vercel", "heroku", "cloudflare", "openrouter", "together",
        "fireworks", "perplexity", "deepseek", "xai", "voyage", "elevenlabs", "pagerduty",
        "segment", "mixpanel", "shopify", "paypal", "braintree", "tollway", "llm",
    }
)  # fmt: skip
# The word in front of `token` that makes it a credential (`access_token`, `HF_TOKEN`...).
_TOKEN_QUALIFIERS = frozenset(
    {
        "access", "auth", "api", "bearer", "refresh", "id", "session", "security", "secret", "bot",
        "oauth", "oauth2", "personal", "github", "gh", "gitlab", "gl", "hf", "huggingface",
        "slack", "npm", "pypi", "discord", "telegram", "twilio", "app", "service", "csrf", "xsrf",
        "jwt", "identity", "user", "admin", "sso", "saml", "vault", "consul", "docker",
        "registry", "cloudflare", "vercel", "netlify", "heroku", "digitalocean", "do", "linear",
        "notion", "figma", "sentry", "datadog", "replicate", "openai", "anthropic", "tollway",
        "circleci", "travis", "codecov", "sonar", "snyk", "fly", "render", "railway", "deploy",
        "ci", "cd", "runner", "pat", "private", "webhook", "push", "fcm", "apns", "firebase",
    }
)  # fmt: skip


class _Assignment:
    """A literal assigned to a credential-like name: its identifier and value span."""

    __slots__ = ("before", "end", "ident", "start", "value")

    def __init__(self, ident: str, before: str, value: str, start: int, end: int) -> None:
        self.ident = ident
        self.before = before
        self.value = value
        self.start = start
        self.end = end


def _identifier(folded: str, text: str, kw_start: int, kw_end: int) -> tuple[str, str] | None:
    """The identifier ending at the keyword (folded) and the word before the keyword in it.

    None unless the keyword begins a word of the identifier (`bypass=`, `monkey=` are not
    credentials) and the identifier is a name rather than part of a path or type name
    (`AWS::SecretsManager::Secret`, `arn:aws:...:secret:name`).
    """
    start = kw_start
    floor = max(0, kw_start - 64)
    while start > floor and folded[start - 1] in _IDENT_CHARS:
        start -= 1
    if not (
        kw_start == start
        or folded[kw_start - 1] in "_.-"
        or (text[kw_start].isupper() and text[kw_start - 1].islower())  # camelCase
    ):
        return None
    if folded[start - 1 : start] == ":":
        return None
    words = _WORD_SPLIT.split(text[start:kw_start])
    before = next((w for w in reversed(words) if w), "").lower()
    return folded[start:kw_end].strip(".-_"), before


def _is_expression(value: str, text: str, end: int, op: str, spaced: bool) -> bool:
    """An unquoted value that is code (a name, call, attribute or annotation), not a literal."""
    if "(" in value or "[" in value or _DOTTED_NAME.fullmatch(value):
        return True
    if _CONST_NAME.fullmatch(value):
        return True  # PASSWORD=DB_PASSWORD: an environment variable's name
    if value.split(":", 1)[0] in _CODE_WORDS or value.endswith(":"):
        return True  # password=lambda: ..., token=await get()
    if op == ":":
        # A type (password: str, secret: SecretStr | None) or a name: no literal looks like one.
        return value.isidentifier() and not has_digit(value)
    return spaced and value.isidentifier() and not has_digit(value)  # x = other_variable


def _assigned(folded: str, text: str, m: re.Match[str]) -> _Assignment | None:
    """The literal assigned to the keyword matched at `m`, if there is one."""
    named = _identifier(folded, text, m.start(), m.start("close"))
    if named is None:
        return None
    ident, before = named
    v = _VALUE.match(text, m.end())
    if v is None:
        return None
    group = v.lastgroup or "bare"
    value, start, end = v[group], v.start(group), v.end(group)
    if value.startswith(REFERENCE_STARTS) or " " in value or "\t" in value:
        return None
    if "://" in value or value.startswith("arn:") or _CONST_NAME.fullmatch(value):
        return None  # a URL (its password is found on its own), an ARN, an env var's name
    if group == "bare":
        spaced = bool(m["gap"]) or text[m.end() : m.end() + 1] in (" ", "\t")
        if _is_expression(value, text, end, m["op"], spaced):
            return None
    if value.lower().replace("-", "_") == ident.replace("-", "_"):
        return None
    return _Assignment(ident, before, value, start, end)


def _complex_enough(value: str) -> bool:
    """A password has a digit or a symbol; letters alone are a word or a name."""
    return has_digit(value) or has_symbol(value)


def _random_enough(value: str, min_len: int) -> bool:
    """An API key or token: long, and mixing letters with digits."""
    return len(value) >= min_len and letters_and_digits(value) and len(set(value)) >= 6


def _password(folded: str, text: str, m: re.Match[str], out: list[Finding]) -> None:
    a = _assigned(folded, text, m)
    if a and len(a.value) >= 6 and _complex_enough(a.value) and not is_placeholder(a.value):
        out.append(finding("password", a.start, a.end))


def _secret(folded: str, text: str, m: re.Match[str], out: list[Finding]) -> None:
    a = _assigned(folded, text, m)
    if a is None:
        return
    value = a.value
    if len(value) == 40 and ("aws" in a.ident or "access" in a.ident) and _random_enough(value, 40):
        # AWS's documented example secret ends in EXAMPLEKEY and is still well-formed.
        out.append(finding("aws_secret_access_key", a.start, a.end))
    elif (
        len(value) >= 8
        and (_random_enough(value, 8) or _complex_enough(value))
        and not is_placeholder(value)
    ):
        out.append(finding("secret", a.start, a.end))


def _key(folded: str, text: str, m: re.Match[str], out: list[Finding]) -> None:
    a = _assigned(folded, text, m)
    if a is None:
        return
    if a.before not in _KEY_QUALIFIERS and not a.before.endswith("api"):
        return  # sort(key=...), primary_key, cache_key
    if _random_enough(a.value, 12) and not is_placeholder(a.value):
        out.append(finding("api_key", a.start, a.end))


def _token(folded: str, text: str, m: re.Match[str], out: list[Finding]) -> None:
    a = _assigned(folded, text, m)
    if a is None or is_placeholder(a.value) or _UUID.fullmatch(a.value):
        return
    if a.before and a.before not in _TOKEN_QUALIFIERS:
        return  # nextPageToken, max_token, ImportToken: not credentials
    if "twilio" in a.ident and len(a.value) == 32 and is_hex(a.value):
        out.append(finding("twilio_auth_token", a.start, a.end))
    elif _random_enough(a.value, 16):
        out.append(finding("token", a.start, a.end))


def _password_flag(folded: str, text: str, m: re.Match[str], out: list[Finding]) -> None:
    if m.start() and not folded[m.start() - 1].isspace():
        return  # "positions--pass it on": not a command-line flag
    v = _VALUE.match(text, m.end())
    if v is None or v.lastgroup is None:
        return
    value, start, end = v[v.lastgroup], v.start(v.lastgroup), v.end(v.lastgroup)
    if value.startswith(REFERENCE_STARTS) or " " in value or "=" in value or is_placeholder(value):
        return
    if len(value) >= 6 and _complex_enough(value):
        out.append(finding("password", start, end))


def _auth_header(folded: str, text: str, m: re.Match[str], out: list[Finding]) -> None:
    """Authorization: Bearer <token> / Basic <base64 of user:password>."""
    if m.start() and folded[m.start() - 1].isalnum():
        return
    if m["tok"] is not None:
        value = text[m.start("tok") : m.end("tok")]
        if _random_enough(value, 16) and not is_placeholder(value):
            out.append(finding("bearer_token", m.start("tok"), m.end("tok")))
        return
    try:
        user, sep, password = (
            base64.b64decode(text[m.start("basic") : m.end("basic")]).decode("ascii").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return
    if sep and user.isprintable() and password.isprintable() and password:
        out.append(finding("basic_auth", m.start("basic"), m.end("basic")))


_Handler = Callable[[str, str, "re.Match[str]", list[Finding]], None]

_PASSES: tuple[tuple[re.Pattern[str], _Handler], ...] = (
    (_PASSWORD, _password),
    (_SECRET, _secret),
    (_KEY, _key),
    (_TOKEN, _token),
    (_AUTH_HEADER, _auth_header),
    (_PASSWORD_FLAG, _password_flag),
)


def find_assignments(text: str, folded: str, out: list[Finding]) -> None:
    """Append the secrets assigned to credential-like names in `text` to `out`.

    `folded` is `text` with ASCII upper case folded to lower case and digits to ``0``.
    """
    for pattern, handler in _PASSES:
        for m in pattern.finditer(folded):
            handler(folded, text, m, out)
