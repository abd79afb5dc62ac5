"""The cluster fixture: every server of tests/cluster/harness.py, killed in teardown even when the
test fails (each in its own process group)."""

import pytest

from tests.cluster.harness import Cluster


@pytest.fixture(scope="module")
def cluster(tiny_clip_dir):
    running = Cluster(
        model_dir=tiny_clip_dir,
        extra_env={
            # A killed worker's task goes back to the queue after this many seconds (production:
            # 2 h). Longer than any task here; a second delivery of a crawl is skipped anyway.
            "MEEPO_TASK_VISIBILITY_TIMEOUT": "30",
            # One image per forward pass and one embed task per cycle, each pass committed on its
            # own: a task runs long enough to be killed half-way.
            "MEEPO_EMBED_BATCH": "1",
            "MEEPO_EMBED_TASK_BATCH": "10000",
        },
    ).start()
    yield running
    running.stop()
