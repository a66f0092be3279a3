"""Prompt texts: code context, questions, agent turns, batch documents, and the gamers' own.

Texts are drawn once per run into pools (`TextPools`) and reused, so each distinct text
is measured (tokens, gaming signals, sketch) once in `TextBank`, never once per request.
Word lists are small but combine into varied prose and code that compresses like the real
thing (about 2-3x under zlib), while padding compresses 7x and more.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tollway.gateway.apis import fingerprint
from tollway.insights.orgsim.draw import pick
from tollway.insights.signals import measure, score
from tollway.insights.sketch import sketch
from tollway.metering.tokens import count_tokens


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_NOUNS = _words(
    "cache request handler token budget ledger invoice payment session user account queue "
    "worker schema migration index query report dashboard metric alert timeout retry "
    "connection pool client server config flag rollout deploy build pipeline test fixture "
    "module service endpoint router gateway webhook event stream batch job scheduler lock "
    "transaction snapshot backup replica shard partition tenant policy role permission "
    "price discount refund order cart checkout catalog search ranking model prompt "
    "embedding"
)
_VERBS = _words(
    "returns rejects retries caches parses validates drops duplicates logs serializes "
    "blocks leaks stalls deadlocks skips rounds truncates overwrites flushes reorders "
    "throttles double-counts ignores mislabels"
)
_ADJ = _words(
    "stale empty nested async flaky slow partial missing duplicate expired negative "
    "unsorted legacy hourly nightly concurrent cached optional unicode large"
)
_LANGS = ("Python", "TypeScript", "Go", "Rust", "Java", "SQL", "Kotlin", "Bash")
_ERRORS = (
    "KeyError: 'tenant_id'",
    "TypeError: 'NoneType' object is not subscriptable",
    "sqlite3.OperationalError: database is locked",
    "asyncio.TimeoutError",
    "panic: runtime error: index out of range [3] with length 3",
    "java.lang.NullPointerException at OrderService.java:214",
    "ECONNRESET while reading from upstream",
    "AssertionError: expected 200, got 429",
    "deadlock detected while waiting for ShareLock on transaction",
    "ValueError: invalid literal for int() with base 10: ''",
)
_OPENERS = (
    "How do I",
    "What is the cleanest way to",
    "Can you help me",
    "Why does my code fail when I try to",
    "Is it safe to",
    "What's the idiomatic way to",
    "Explain how to",
    "Review this and tell me how to",
)
_TASKS = (
    "paginate {n} results from the {a} API",
    "retry a {a} call with exponential backoff",
    "stream rows from the {a} table without loading them all",
    "mock the {a} client in a unit test",
    "make the {a} migration reversible",
    "deduplicate {a} events arriving out of order",
    "add a read-through cache in front of the {a} lookup",
    "split the {a} module into smaller pieces",
    "handle time zones when the {a} report runs at midnight",
    "debounce {a} updates coming from the websocket",
)
_PADDING = (
    "Please be extremely thorough, detailed, comprehensive and complete in your answer.",
    "IMPORTANT: consider every possible edge case and explain each one at length.",
    "Note: this is a very important request, please think step by step carefully.",
    "Context: the following context is provided for context and completeness.",
)
_FILLER_WORDS = _words("lorem ipsum dolor sit amet consectetur adipiscing elit sed do")


@dataclass(frozen=True, slots=True)
class Text:
    """A prompt's new part and what the gateway would measure of it."""

    body: str
    tokens: int
    score: float  # gaming score when the answer stops normally
    burn_score: float  # gaming score when a large max_tokens is used up ("length")
    sketch: int
    fingerprint: str  # of the body alone; requests hash it with their context


class TextBank:
    """Measures each distinct text once (tokens, signals, sketch, fingerprint)."""

    def __init__(self) -> None:
        self._texts: dict[str, Text] = {}

    def get(self, body: str) -> Text:
        text = self._texts.get(body)
        if text is None:
            signals = measure(body)
            text = self._texts[body] = Text(
                body,
                count_tokens(body),
                score(signals).score,
                score(replace(signals, length_burn=True)).score,
                sketch(body),
                fingerprint(body),
            )
        return text

    def __len__(self) -> int:
        return len(self._texts)


def _ident(rng: random.Random) -> str:
    return f"{rng.choice(_ADJ)}_{rng.choice(_NOUNS)}"


def _camel(rng: random.Random) -> str:
    return rng.choice(_NOUNS).capitalize() + rng.choice(_NOUNS).capitalize()


def sentence(rng: random.Random) -> str:
    """One sentence of engineering prose."""
    a, b = rng.choice(_NOUNS), rng.choice(_NOUNS)
    shapes = (
        f"The {a} {rng.choice(_VERBS)} the {rng.choice(_ADJ)} {b} when the {rng.choice(_NOUNS)} "
        f"is {rng.choice(_ADJ)}.",
        f"We call {_ident(rng)}() from the {a} {rng.choice(_NOUNS)} every {rng.randint(2, 90)} "
        f"seconds.",
        f"After the last deploy, {rng.randint(2, 40)}% of {a} requests {rng.choice(_VERBS)} "
        f"their {b}.",
        f"It only happens with {rng.choice(_ADJ)} {a}s, not with {rng.choice(_ADJ)} ones.",
        f"I expected {_ident(rng)} to be {rng.choice(_ADJ)}, but the {b} {rng.choice(_VERBS)} it.",
    )
    return rng.choice(shapes)


def prose(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def code(rng: random.Random, lines: int) -> str:
    """Python-looking code with varied names (no line repeats much)."""
    fn, arg, other = _ident(rng), rng.choice(_NOUNS), rng.choice(_NOUNS) + "s"
    out = [f"def {fn}({arg}: {_camel(rng)}, {other}: list[str]) -> dict[str, int]:"]
    out.append(f'    """{sentence(rng)}"""')
    depth = 1
    for _ in range(lines):
        pad = "    " * depth
        var, attr = _ident(rng), rng.choice(_NOUNS)
        shape = rng.randrange(7)
        if shape == 0:
            out.append(f"{pad}{var} = {arg}.{attr}.get({rng.randint(0, 999)!r}, {{}})")
        elif shape == 1 and depth < 3:
            out.append(f"{pad}for {attr} in {other}[{rng.randint(0, 9)}:]:")
            depth += 1
        elif shape == 2 and depth < 3:
            out.append(f"{pad}if {var} is None or {attr}.{rng.choice(_ADJ)}:")
            depth += 1
        elif shape == 3:
            out.append(f'{pad}log.debug("{rng.choice(_NOUNS)} %s {rng.choice(_VERBS)}", {var})')
        elif shape == 4 and depth > 1:
            out.append(f"{pad}{_ident(rng)}[{attr}] += {rng.randint(1, 64)}")
            depth -= 1
        elif shape == 5:
            out.append(f"{pad}{var} = await {_ident(rng)}({attr}, timeout={rng.randint(1, 30)})")
        else:
            out.append(f"{pad}# {sentence(rng)}")
    out.append(f"    return {{{rng.choice(_NOUNS)!r}: len({other})}}")
    return "\n".join(out)


def ide_context(rng: random.Random) -> str:
    """What an editor sends for a completion: the file around the cursor."""
    path = f"src/{rng.choice(_NOUNS)}/{_ident(rng)}.py"
    return f"# {path}\n{code(rng, rng.randint(6, 30))}\n"


def question(rng: random.Random) -> str:
    """A chat question, sometimes with code and an error pasted in."""
    task = rng.choice(_TASKS).format(n=rng.choice((50, 100, 500, 1000)), a=rng.choice(_NOUNS))
    parts = [f"{rng.choice(_OPENERS)} {task} in {rng.choice(_LANGS)}?", prose(rng, 2)]
    if rng.random() < 0.6:
        parts.append("Here is what I have:\n\n" + code(rng, rng.randint(4, 16)))
    if rng.random() < 0.5:
        parts.append(f"It fails with: {rng.choice(_ERRORS)}")
    parts.append(prose(rng, rng.randint(1, 3)))
    return "\n\n".join(parts)


def agent_turn(rng: random.Random) -> str:
    """One new turn of an agentic session: an instruction or a tool's output."""
    if rng.random() < 0.35:
        return f"Now {rng.choice(_TASKS).format(n=100, a=rng.choice(_NOUNS))}. " + prose(rng, 2)
    test = f"tests/{rng.choice(_NOUNS)}/test_{_ident(rng)}.py"
    passed, failed = rng.randint(3, 240), rng.randint(0, 6)
    lines = [f"$ pytest {test} -q"]
    for _ in range(failed or 1):
        lines.append(f"FAILED {test}::test_{_ident(rng)} - {rng.choice(_ERRORS)}")
    lines.append(code(rng, rng.randint(3, 14)))
    lines.append(f"{passed} passed, {failed} failed in {rng.uniform(0.4, 90):.2f}s")
    return "\n".join(lines)


def batch_document(rng: random.Random) -> str:
    """A document a batch job classifies or summarises (a ticket, a log excerpt)."""
    head = f"Ticket {rng.choice(_NOUNS).upper()}-{rng.randint(100, 9999)}: {sentence(rng)}"
    body = prose(rng, rng.randint(3, 9))
    return f"Classify and summarise this ticket.\n\n{head}\n{body}\nLabels: bug, feature, ops."


def padded(rng: random.Random) -> str:
    """A normal question inflated with filler: repeated boilerplate or repeated blocks."""
    base = question(rng)
    style = rng.randrange(3)
    if style == 0:
        filler = "\n".join([rng.choice(_PADDING)] * rng.randint(25, 70))
    elif style == 1:
        block = prose(rng, 3)
        filler = "\n".join([block] * rng.randint(8, 20))
    else:
        words = " ".join(rng.choice(_FILLER_WORDS) for _ in range(12))
        filler = "\n".join([words] * rng.randint(30, 80))
    return f"{base}\n\n{filler}"


def burner_prompt(rng: random.Random) -> str:
    """A request meant to run to the token limit."""
    topic = rng.choice(_NOUNS)
    return (
        f"Write the longest possible, exhaustive reference manual about the {topic} "
        f"{rng.choice(_NOUNS)}. Do not summarise, do not stop early, repeat sections if you "
        f"must, keep going until you run out of space. {prose(rng, 3)}"
    )


def bulk_document(rng: random.Random, pieces: Sequence[Text], target_tokens: int) -> str:
    """A long paste of about `target_tokens` tokens: many files and logs (drawn `pieces`)."""
    parts: list[str] = []
    tokens = 0
    while tokens < target_tokens:
        piece = pick(rng, pieces)
        parts.append(piece.body)
        tokens += piece.tokens
    return "Summarise everything below and list risks.\n\n" + "\n\n".join(parts)


def loop_prompt(rng: random.Random) -> str:
    """A fixed prompt a script resends unchanged."""
    return (
        f"Give me a status summary of the {rng.choice(_NOUNS)} {rng.choice(_NOUNS)} service "
        f"and list open risks. {prose(rng, 4)}"
    )


def near_duplicate(rng: random.Random, template: str, n: int, clock: str) -> str:
    """`template` with a counter, a timestamp or one word changed."""
    style = rng.randrange(3)
    if style == 0:
        return f"Run #{n}: {template}"
    if style == 1:
        return f"[{clock}] {template}"
    words = template.split(" ")
    i = rng.randrange(len(words))
    words[i] = rng.choice(_NOUNS)
    return " ".join(words)


def system_prompt(rng: random.Random, kind: str) -> str:
    """The system prompt a tool sends with every request of its kind."""
    if kind == "ide":
        return "You are a code completion engine. Complete the code at the cursor."
    if kind == "agentic":
        tools = "\n".join(
            f"- {_ident(rng)}({rng.choice(_NOUNS)}: str): {sentence(rng)}" for _ in range(24)
        )
        return f"You are a coding agent working in a repository. Tools:\n{tools}"
    return "You are a helpful engineering assistant."


@dataclass(frozen=True, slots=True)
class TextPools:
    """Texts per use, drawn once per run from the org's seed."""

    ide: tuple[Text, ...]
    questions: tuple[Text, ...]
    agent_turns: tuple[Text, ...]
    batch: tuple[Text, ...]
    padded: tuple[Text, ...]
    burner: tuple[Text, ...]
    bulk: tuple[Text, ...]
    systems: dict[str, Text]

    @classmethod
    def draw(cls, seed: int, bank: TextBank, size: int = 1500) -> TextPools:
        """Pools of about `size` texts each (fewer for the gamers' rarer kinds)."""
        rng = random.Random(f"orgsim:texts:{seed}")
        small = max(20, size // 10)
        ide = tuple(bank.get(ide_context(rng)) for _ in range(size))
        questions = tuple(bank.get(question(rng)) for _ in range(size))
        agent_turns = tuple(bank.get(agent_turn(rng)) for _ in range(size))
        pieces = ide + agent_turns
        return cls(
            ide=ide,
            questions=questions,
            agent_turns=agent_turns,
            batch=tuple(bank.get(batch_document(rng)) for _ in range(small)),
            padded=tuple(bank.get(padded(rng)) for _ in range(small)),
            burner=tuple(bank.get(burner_prompt(rng)) for _ in range(small)),
            bulk=tuple(
                bank.get(bulk_document(rng, pieces, rng.randint(15_000, 60_000)))
                for _ in range(max(8, small // 10))
            ),
            systems={k: bank.get(system_prompt(rng, k)) for k in ("ide", "agentic", "chat")},
        )
