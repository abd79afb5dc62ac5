"""Dynamic batching of concurrent calls: right answers to the right callers, fewer passes, errors
reach exactly the callers whose pass failed, and a lone call never waits for company."""

import threading
import time

import numpy as np
import pytest

from search.batching import Coalescer


class Recorder:
    """A batch function that is slow like a model forward and remembers every batch."""

    def __init__(self, delay=0.05, fail_on=None):
        self.delay, self.fail_on, self.batches = delay, fail_on, []
        self.inside = 0
        self.overlapped = False

    def __call__(self, items):
        self.inside += 1
        self.overlapped |= self.inside > 1
        self.batches.append(list(items))
        time.sleep(self.delay)
        self.inside -= 1
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot encode {self.fail_on}")
        return [item * 10 for item in items]


def call_concurrently(coalescer, items):
    results, errors = {}, {}
    start = threading.Barrier(len(items))

    def call(item):
        start.wait()
        try:
            results[item] = coalescer(item)
        except Exception as exc:  # recorded for the assertions
            errors[item] = exc

    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a caller never got its answer"
    return results, errors


def test_concurrent_callers_share_passes_and_each_gets_its_own_answer():
    recorder = Recorder()
    coalescer = Coalescer(recorder, max_batch=16)
    results, errors = call_concurrently(coalescer, list(range(12)))
    assert errors == {}
    assert results == {i: i * 10 for i in range(12)}
    assert coalescer.passes == len(recorder.batches) < 12
    assert max(len(batch) for batch in recorder.batches) > 1
    assert sorted(i for batch in recorder.batches for i in batch) == list(range(12))
    assert not recorder.overlapped  # passes never run at the same time


def test_a_pass_never_exceeds_max_batch():
    recorder = Recorder(delay=0.02)
    coalescer = Coalescer(recorder, max_batch=3)
    results, _ = call_concurrently(coalescer, list(range(10)))
    assert results == {i: i * 10 for i in range(10)}
    assert max(len(batch) for batch in recorder.batches) <= 3


def test_a_lone_call_runs_at_once_in_a_pass_of_one():
    recorder = Recorder(delay=0)
    coalescer = Coalescer(recorder)
    assert coalescer(4) == 40
    assert coalescer(5) == 50
    assert recorder.batches == [[4], [5]]


def test_an_error_reaches_the_callers_of_that_pass_only_and_the_next_calls_work():
    recorder = Recorder(fail_on=3)
    coalescer = Coalescer(recorder)
    results, errors = call_concurrently(coalescer, list(range(8)))
    failed_batch = next(batch for batch in recorder.batches if 3 in batch)
    assert set(errors) == set(failed_batch)
    assert all("cannot encode 3" in str(exc) for exc in errors.values())
    assert results == {i: i * 10 for i in range(8) if i not in failed_batch}
    assert coalescer(7) == 70  # not stuck after a failure


def test_a_batch_function_returning_the_wrong_count_is_an_error_not_a_mixup():
    coalescer = Coalescer(lambda items: [1])
    assert coalescer("only") == 1
    results, errors = call_concurrently(Coalescer(lambda items: [0] * (len(items) + 1)), [1, 2])
    assert results == {}
    assert len(errors) == 2


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        Coalescer(lambda items: items, max_batch=0)


def test_concurrent_text_queries_match_one_at_a_time_encoding(tiny_clip):
    from search.encoder import load_encoder

    encoder = load_encoder(str(tiny_clip), "cpu", False, 1)
    texts = ["red chair", "a fluffy striped salmon pillow for the sofa", "fork", "🍵", "שולחן עץ"]
    alone = {text: encoder.encode_texts([text])[0] for text in texts}
    together = encoder.encode_texts(texts)  # padded to the longest, masked: the same vectors
    results, errors = call_concurrently(encoder.text_coalescer, texts)
    assert errors == {}
    for i, text in enumerate(texts):
        np.testing.assert_allclose(together[i], alone[text], atol=1e-5)
        np.testing.assert_allclose(results[text], alone[text], atol=1e-5)
