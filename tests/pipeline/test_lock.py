"""The pipeline lock: one run at a time, a second exits at once with its own exit code."""

import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pipeline.exceptions import PipelineLocked
from pipeline.lock import LOCKED_EXIT_CODE, lock_path, pipeline_lock

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"pid %d (test holder)" % os.getpid())
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def other_process_holds_lock():
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_lock_is_exclusive_and_released_after_use():
    with pipeline_lock(), pytest.raises(PipelineLocked), pipeline_lock():
        pass
    with pipeline_lock():  # released: can be taken again
        pass


def test_overlapping_pipeline_exits_at_once_with_distinct_code(other_process_holds_lock):
    started = time.monotonic()
    with pytest.raises(CommandError, match="another pipeline run holds") as exc:
        call_command("pipeline", "--skip-scrape")
    assert exc.value.returncode == LOCKED_EXIT_CODE
    assert "test holder" in str(exc.value)
    assert time.monotonic() - started < 5


def test_stage_commands_respect_the_lock(other_process_holds_lock):
    for command in ("scrape", "embed", "attributes", "build_index"):
        with pytest.raises(CommandError) as exc:
            call_command(command)
        assert exc.value.returncode == LOCKED_EXIT_CODE


@pytest.mark.django_db
def test_demo_respects_the_lock_before_crawling(other_process_holds_lock, monkeypatch):
    import pipeline.scrape
    from demo.management.commands import demo

    monkeypatch.setattr(demo, "call_command", lambda *a, **k: None)  # migrate, collectstatic
    monkeypatch.setattr(pipeline.scrape, "add_store", lambda *a, **k: pytest.fail("crawled"))
    with pytest.raises(CommandError) as exc:
        call_command("demo", "--no-serve", "--products", "1")
    assert exc.value.returncode == LOCKED_EXIT_CODE


def test_lock_of_a_killed_process_is_free(other_process_holds_lock):
    other_process_holds_lock.kill()
    other_process_holds_lock.wait()
    with pipeline_lock():
        pass
