"""Near-duplicate sketches: small edits stay near, unrelated prompts on the same topic do not."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import tollway
from tollway.insights.sketch import near_duplicate, sketch


def choices(text: str) -> tuple[str, ...]:
    """Phrases separated by "|", or words when there is no "|"."""
    return tuple(text.split("|") if "|" in text else text.split())


# A labelled corpus of generated prompts. Every prompt of a kind draws on the same small
# vocabulary and templates, so unrelated pairs share topic, words and layout: the hard case.
SUBJECTS = choices(
    "the billing service|our retry policy|the payment provider|the legacy queue|the ingestion "
    "worker|this migration|the cache layer|the on-call rota|the API gateway|the nightly export|"
    "the search index|my team|the scheduler|the test suite|the customer dashboard|the auth "
    "middleware|the database pool"
)
VERBS = choices(
    "drops|retries|duplicates|delays|rejects|times out on|double-charges|silently skips|"
    "rate-limits|logs|caches|reorders|validates|locks"
)
OBJECTS = choices(
    "orders invoices webhooks refunds batches sessions events uploads reports tokens messages "
    "jobs requests tenants payloads records"
)
ADJECTIVES = choices(
    "large stale concurrent partial encrypted old pending failed nested duplicate urgent "
    "legacy sparse foreign"
)
ASKS = choices(
    "Could you explain why|Please help me understand why|I need to know whether|Can you check "
    "if|Summarise why|Suggest a fix: sometimes|Review this: apparently"
)
WHEN = choices(
    "after the last deploy|under heavy load|when the region fails over|on Mondays|for the EU "
    "tenants|since we raised the pool size|during backfills|when two workers race|if the clock "
    "skews|with the new SDK"
)
FUNCTIONS = choices(
    "fetch parse load store retry merge split render encode validate flush compact schedule "
    "notify resolve index export"
)
NOUNS = choices(
    "user order row item page chunk event record token key path config session result buffer "
    "client policy entry"
)
STATEMENTS = (
    "{a} = {f}_{b}({c}, timeout={n})",
    "if not {a}:\n        return None",
    "for {a} in {b}s:\n        {c}.append({f}_{a}({a}))",
    'log.info("{f} %s took %d ms", {a}, {n})',
    "{a}.{f}({b}={n}, {c}={c})",
    "try:\n        {f}_{a}({b})\n    except TimeoutError:\n        {c} += {n}",
    "return {f}_{b}({a}, {c})",
    "assert len({a}) <= {n}, {b}",
    "{a} = [{f}_{b}(x) for x in {c} if x]",
)


def sentence(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return (
            f"{rng.choice(ASKS)} {rng.choice(SUBJECTS)} {rng.choice(VERBS)} "
            f"{rng.choice(ADJECTIVES)} {rng.choice(OBJECTS)} {rng.choice(WHEN)}?"
        )
    if kind < 0.8:
        return (
            f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} about "
            f"{rng.randint(2, 9999)} {rng.choice(ADJECTIVES)} {rng.choice(OBJECTS)} "
            f"{rng.choice(WHEN)}."
        )
    return (
        f"We saw {rng.randint(2, 500)} {rng.choice(OBJECTS)} at {rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d} and {rng.choice(SUBJECTS)} {rng.choice(VERBS)} them."
    )


def prose(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    while sum(map(len, lines)) < size:
        lines.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 4))))
    return "\n".join(lines)


def code(rng: random.Random, size: int) -> str:
    blocks: list[str] = []
    while sum(map(len, blocks)) < size:
        f, a, b = rng.choice(FUNCTIONS), rng.choice(NOUNS), rng.choice(NOUNS)
        lines = [f"def {f}_{a}({a}, {b}s, policy=None):"]
        for _ in range(rng.randint(2, 6)):
            statement = rng.choice(STATEMENTS).format(
                a=rng.choice(NOUNS),
                b=rng.choice(NOUNS),
                c=rng.choice(NOUNS),
                f=rng.choice(FUNCTIONS),
                n=rng.randint(1, 5000),
            )
            lines.append("    " + statement)
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def logs(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    while sum(map(len, lines)) < size:
        lines.append(
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z "
            f"{rng.choice(('INFO', 'WARN', 'ERROR'))} worker-{rng.randint(1, 16)} "
            f"{rng.choice(FUNCTIONS)} {rng.choice(OBJECTS)} rows={rng.randint(1, 9999)}"
        )
    return "\n".join(lines)


def mixed(rng: random.Random, size: int) -> str:
    parts = (prose(rng, size // 3), code(rng, size // 3), logs(rng, size // 4), sentence(rng))
    return "\n\n".join(parts)


KINDS: tuple[Callable[[random.Random, int], str], ...] = (prose, code, mixed)


def edit(rng: random.Random, text: str) -> str:
    """One small edit: a counter or timestamp, a word, a typo, two lines swapped, a stamp."""
    kind = rng.randrange(6)
    numbers = list(re.finditer(r"\d+", text))
    lines = text.split("\n")
    if kind == 0 and numbers:
        m = rng.choice(numbers)
        return text[: m.start()] + str(rng.randint(0, 99_999)) + text[m.end() :]
    if kind in (1, 2):
        words = text.split(" ")
        i = rng.randrange(len(words))
        op = rng.randrange(3)
        if op == 0:
            words[i] = rng.choice(OBJECTS + ADJECTIVES + NOUNS)
        elif op == 1:
            words.insert(i, rng.choice(ADJECTIVES))
        elif len(words) > 3:
            del words[i]
        return " ".join(words)
    if kind == 3 and len(lines) > 2:
        i = rng.randrange(len(lines) - 1)
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        return "\n".join(lines)
    if kind == 4:
        i = rng.randrange(1, len(text) - 1)
        return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]
    if rng.random() < 0.5:
        return f"[{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}] " + text
    return text + f"\n(attempt {rng.randint(2, 9)})"


def length(rng: random.Random) -> int:
    return int(10 ** rng.uniform(2.1, 3.7))  # ~125 B to 5 KB, log-uniform


def near_pairs(n: int, seed: int = 11) -> list[tuple[str, str]]:
    """`n` prompts, each with a copy that has one to three small edits."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        original = edited = KINDS[i % len(KINDS)](rng, length(rng))
        for _ in range(rng.randint(1, 3)):
            edited = edit(rng, edited)
        pairs.append((original, edited))
    return pairs


def unrelated_pairs(n: int, seed: int = 12) -> list[tuple[str, str]]:
    """`n` pairs of independent prompts of the same kind and similar length."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        make, size = KINDS[i % len(KINDS)], length(rng)
        pairs.append((make(rng, size), make(rng, int(size * rng.uniform(0.8, 1.25)))))
    return pairs


def test_small_edits_are_near_and_unrelated_prompts_are_not() -> None:
    near = [near_duplicate(sketch(a), sketch(b)) for a, b in near_pairs(300)]
    unrelated = [near_duplicate(sketch(a), sketch(b)) for a, b in unrelated_pairs(300)]
    assert sum(near) / len(near) >= 0.9
    assert sum(unrelated) / len(unrelated) <= 0.01


def test_renumbering_case_and_whitespace_do_not_change_the_sketch() -> None:
    text = code(random.Random(3), 600)
    same = (
        text.replace("1", "7"),
        text.upper(),
        text.replace("    ", "\t"),
        text.replace("\n", "\n\n"),
    )
    assert all(sketch(variant) == sketch(text) != 0 for variant in same)


def test_a_long_prompt_is_sketched_from_its_head_and_tail() -> None:
    rng = random.Random(5)
    head, middle, tail = prose(rng, 1500), prose(rng, 100_000), prose(rng, 1500)
    long = head + middle + tail
    assert sketch(long) == sketch(head + prose(rng, 50_000) + tail)  # the middle is unseen
    assert sketch(long) != sketch(head + middle + prose(rng, 1500))


# Fingerprints are stored and compared across processes and releases: pin the format.
SOURCE = str(Path(tollway.__file__).resolve().parent.parent)  # the child runs this tollway
PINNED = "Could you explain why the billing service double-charges pending invoices on Mondays?"


def test_the_fingerprint_format_is_pinned_and_the_same_in_every_process() -> None:
    script = "from tollway.insights.sketch import sketch; import sys; print(sketch(sys.argv[1]))"
    values = {sketch(PINNED)}
    for seed in ("1", "2"):  # str hashing is salted per process; the sketch must not be
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": SOURCE}
        out = subprocess.run(
            [sys.executable, "-c", script, PINNED], env=env, capture_output=True, text=True
        )
        values.add(int(out.stdout))
    assert values == {81_544_183_894_051_344}


@given(st.text(max_size=5000))
def test_a_sketch_fits_a_signed_bigint_and_is_deterministic(text: str) -> None:
    value = sketch(text)
    assert 0 <= value < 2**63
    assert sketch(text) == value


@given(st.text(st.characters(max_codepoint=127), max_size=39))
def test_short_text_is_not_sketched(text: str) -> None:
    assert sketch(text) == 0
    assert sketch(text + " \n\t" * 1000) == 0  # whitespace does not count


@given(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_near_duplicate_is_symmetric_and_never_for_unsketched(a: int, b: int) -> None:
    assert near_duplicate(a, b) == near_duplicate(b, a)
    assert near_duplicate(a, a) == (a != 0)
    assert not near_duplicate(0, b) and not near_duplicate(a, 0)
