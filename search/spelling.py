"""Spelling help from the catalogue's own words: "teapto" -> "teapot".

The vocabulary is every word (letters only, 3+ characters, case-folded) of active products'
titles, brands, categories and tags, with how many products use it. `build_index` writes it next
to the index it publishes (`vocabulary.json`, the `VOCABULARY_MAX` most used words), so web
workers read a file instead of the catalogue; without one (no index yet) it is counted from the
database and kept for `VOCABULARY_TTL_SECONDS`.

A query word is corrected only when it is not a catalogue word (nor, for the last word while
typing, the start of one), has no digits (SKUs, GTINs and model numbers are never "corrected")
and a catalogue word lies within a small optimal-string-alignment distance (a swap of two
neighbouring letters counts 1, as typists make it). Among the closest, the most used wins.
Brands are catalogue words, so an existing brand is never corrected. Distances come from
rapidfuzz (C++, a few milliseconds over 50,000 words).
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from search.selectors import STOPWORDS

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "vocabulary.json"
VOCABULARY_MAX = 50_000
VOCABULARY_TTL_SECONDS = 600.0
MIN_WORD_CHARS = 4  # shorter words have too many neighbours to guess from
_LETTERS = re.compile(r"[^\W\d_]+", re.UNICODE)
_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Vocabulary:
    counts: dict[str, int]
    words: tuple[str, ...]  # sorted, for prefix lookups

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Vocabulary:
        top = dict(Counter(counts).most_common(VOCABULARY_MAX))
        return cls(top, tuple(sorted(top)))

    def __contains__(self, word: str) -> bool:
        return word in self.counts

    def has_prefix(self, prefix: str) -> bool:
        i = bisect.bisect_left(self.words, prefix)
        return i < len(self.words) and self.words[i].startswith(prefix)

    def closest(self, word: str) -> str | None:
        """The most used catalogue word within the allowed distance of `word`, or None."""
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        limit = 1 if len(word) < 6 else 2
        found = process.extract(word, self.words, scorer=OSA.distance, score_cutoff=limit, limit=20)
        if not found:
            return None
        best = min(found, key=lambda f: (f[1], -self.counts[f[0]], f[0]))
        return best[0]


def words_of(text: str) -> list[str]:
    return [w for w in _LETTERS.findall(text.casefold()) if len(w) >= 3]


def count_catalogue_words() -> dict[str, int]:
    """{word: products using it} over active products' title, brand, category and tags."""
    from catalog.models import Product

    counts: Counter[str] = Counter()
    rows = Product.objects.active().values_list("title", "brand", "category", "tags")
    for title, brand, category, tags in rows.iterator(chunk_size=2000):
        text = " ".join([title or "", brand or "", category or "", *_tag_texts(tags)])
        counts.update(set(words_of(text)))
    return dict(counts)


def _tag_texts(tags) -> list[str]:
    if isinstance(tags, list | tuple):
        return [str(t) for t in tags]
    return [str(tags)] if tags else []


def write_vocabulary(directory: Path) -> int:
    """Count the catalogue's words into `directory`/vocabulary.json; returns how many."""
    vocab = Vocabulary.from_counts(count_catalogue_words())
    (directory / VOCABULARY_FILE).write_text(
        json.dumps(vocab.counts, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
    return len(vocab.counts)


_cache: dict[str, tuple[float, Vocabulary]] = {}
_lock = threading.Lock()


def get_vocabulary() -> Vocabulary:
    """The published index's vocabulary file, else the database's words (cached a while)."""
    from search.exceptions import IndexNotReady, ModelNotAvailable
    from search.index import get_index

    try:
        path = get_index().path / VOCABULARY_FILE
    except (IndexNotReady, ModelNotAvailable):
        path = None
    key = str(path) if path is not None and path.is_file() else "db"
    with _lock:
        cached = _cache.get(key)
        if cached and (key != "db" or time.monotonic() - cached[0] < VOCABULARY_TTL_SECONDS):
            return cached[1]
    if key == "db":
        vocab = Vocabulary.from_counts(count_catalogue_words())
    else:
        vocab = Vocabulary.from_counts(json.loads(Path(key).read_text(encoding="utf-8")))
    with _lock:
        if len(_cache) > 4:
            _cache.clear()
        _cache[key] = (time.monotonic(), vocab)
    return vocab


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def suggest(query: str, vocabulary: Vocabulary | None = None) -> str | None:
    """The query with its misspelt words corrected, or None when nothing needs correcting."""
    vocab = vocabulary if vocabulary is not None else get_vocabulary()
    if not vocab.counts:
        return None
    tokens = list(_TOKEN.finditer(query))
    typing = bool(query) and not query[-1].isspace()
    changed = False

    def fix(match: re.Match) -> str:
        nonlocal changed
        token = match.group(0)
        word = token.casefold()
        is_last = match.start() == tokens[-1].start()
        if (
            len(word) < MIN_WORD_CHARS
            or not word.isalpha()
            or word in STOPWORDS
            or word in vocab
            or (is_last and typing and vocab.has_prefix(word))
            or query[max(0, match.start() - 1) : match.start()] == "-"  # a minus-word
        ):
            return token
        better = vocab.closest(word)
        if better is None:
            return token
        changed = True
        return better

    corrected = _TOKEN.sub(fix, query)
    return corrected if changed else None
