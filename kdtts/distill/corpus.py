"""The text the teacher reads: English prose that installs offline, plus sentences kdtts writes itself.

Sources, combined and deduplicated in a fixed order so every machine builds the same corpus:
* docstrings of the Python standard library, read with `ast` (no module is imported);
* `pydoc_data.topics`, the prose of the Python language reference;
* `assets/templates` sentences with numbers, dates, times and money (exercise the normaliser);
* optionally a user's own text file, one sentence per line.
Code, markup and symbol-heavy sentences are filtered out. The held-out set (assets/heldout.txt)
is removed from training whatever the source.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import random
import re
import sysconfig
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
HELDOUT_PATH = ASSETS / "heldout.txt"

_PROSE = re.compile(r"[A-Z][A-Za-z ,;:'\-]+[a-z][.!?]")
_SKIP_DIRS = {"test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages", "ensurepip"}


def is_prose(sentence: str, min_words: int = 5, max_words: int = 28) -> bool:
    """Plain sentence: starts with a capital, letters and light punctuation only, sensible length."""
    if not _PROSE.fullmatch(sentence):
        return False
    words = sentence.split()
    if not min_words <= len(words) <= max_words:
        return False
    # identifiers (snake_case was excluded above; CamelCase and ALLCAPS here) read badly
    return not any(re.search(r"[a-z][A-Z]|[A-Z]{3,}", w) for w in words[1:])


def split_prose(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if is_prose(s.strip())]


def stdlib_docstrings() -> list[str]:
    """Prose sentences from the standard library's docstrings, parsed (never imported)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    sentences: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if _SKIP_DIRS & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    sentences.extend(split_prose(doc))
    return sentences


def pydoc_topics() -> list[str]:
    import pydoc_data.topics

    return [s for topic in sorted(pydoc_data.topics.topics) for s in split_prose(pydoc_data.topics.topics[topic])]


def template_sentences(count: int = 400, seed: int = 0) -> list[str]:
    """Sentences with numbers, money, dates and times, so the student hears the normaliser's words."""
    rng = random.Random(seed)
    names = "Smith Johnson Garcia Brown Lee Patel Nguyen Rossi Murphy Cohen Okafor Larsen".split()
    titles = ["Dr.", "Mr.", "Mrs.", "Ms.", "Prof."]
    things = "apples tickets books chairs letters boxes bottles lamps maps coats".split()
    places = ["the station", "the old library", "Main Street", "the harbour", "the north gate", "the market"]
    patterns = [
        lambda: f"{rng.choice(titles)} {rng.choice(names)} paid ${rng.randint(1, 999)}.{rng.randint(0, 99):02d} for {rng.randint(2, 40)} {rng.choice(things)}.",
        lambda: f"The meeting on {rng.randint(1, 12)}/{rng.randint(1, 28)} starts at {rng.randint(1, 12)}:{rng.choice(['00', '15', '30', '45', '05'])} near {rng.choice(places)}.",
        lambda: f"In {rng.randint(1850, 2030)}, about {rng.randint(2, 99)}% of the {rng.choice(things)} came from {rng.choice(places)}.",
        lambda: f"She finished {_ordinal(rng.randint(1, 39))} out of {rng.randint(40, 5000):,} runners.",
        lambda: f"The {rng.choice(['first', 'second', 'third', 'last'])} train leaves {rng.choice(places)} at {rng.randint(1, 12)}:{rng.randint(10, 59)} and costs {rng.randint(2, 90)} dollars.",
        lambda: f"{rng.choice(titles)} {rng.choice(names)} counted {rng.randint(100, 99999):,} {rng.choice(things)} in {rng.randint(3, 12)} hours.",
    ]
    out: set[str] = set()
    while len(out) < count:
        out.add(rng.choice(patterns)())
    return sorted(out)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@functools.cache
def _built_in() -> tuple[str, ...]:
    """The built-in sources, parsed once a process (the stdlib's docstrings take seconds): a recipe's
    stages each ask for the corpus."""
    return tuple(stdlib_docstrings() + pydoc_topics() + template_sentences())


def read_heldout(path: Path = HELDOUT_PATH) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_corpus(extra_text: Path | None = None, limit: int | None = None, seed: int = 0) -> list[str]:
    """Training sentences: deduplicated, held-out removed, in a fixed shuffled order (prefixes are diverse)."""
    sentences = list(_built_in())
    if extra_text:
        sentences += [line.strip() for line in Path(extra_text).read_text(encoding="utf-8").splitlines() if line.strip()]
    heldout = set(read_heldout()) if HELDOUT_PATH.exists() else set()
    unique = sorted({s for s in sentences if s not in heldout},
                    key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest())
    return unique[:limit] if limit else unique
