"""search.per_version: one object per index version and process, the newest two kept, and a
version whose file cannot be read answering None (the caller asks the database)."""

import logging
from pathlib import Path

from search.per_version import PerVersion


def test_loaded_once_per_version_newest_two_kept(tmp_path):
    calls: list[Path] = []

    def load(path: Path) -> str:
        calls.append(path)
        return path.name

    versions = PerVersion(load, "thing")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert [versions.get(a), versions.get(a), versions.get(b)] == ["a", "a", "b"]
    assert calls == [a, b]
    versions.get(c)  # a is closed: the oldest of three
    versions.get(b)
    versions.get(a)
    assert calls == [a, b, c, a]
    versions.forget()
    versions.get(c)
    assert calls[-1] == c


def test_an_unreadable_version_answers_none_and_is_logged_once(tmp_path, caplog):
    calls = []

    def load(path: Path):
        calls.append(path)
        raise ValueError("truncated")

    versions = PerVersion(load, "keyword index")
    with caplog.at_level(logging.ERROR, logger="search.per_version"):
        assert versions.get(tmp_path) is None
        assert versions.get(tmp_path) is None
    assert len(calls) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"could not open the keyword index of {tmp_path}; using the database"
    ]
