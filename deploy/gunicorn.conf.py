"""gunicorn settings for Meepo. Not copied anywhere: systemd (meepo-web.service) and `make run`
run `gunicorn -c <checkout>/deploy/gunicorn.conf.py` straight from the checkout.

Sized for the reference VPS (2 CPUs, 4 GB): two worker processes, one per core, each with one
torch/OpenMP thread so they do not fight over the cores, and a few threads each so a slow photo
upload does not block the quick pages behind it. `preload_app` imports Django (and, in
`when_ready`, the CLIP model) once in the master, so the workers share those pages copy-on-write.
The faiss index is memory-mapped by each worker and shared through the page cache.
Command-line flags win over this file (`--bind 127.0.0.1:8000` in `make run` and the tests).
"""

import gc
import os
import sys

# Before anything imports torch: one intra-op thread per process (2 workers on 2 cores).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meepo.settings")

wsgi_app = "meepo.wsgi:application"
# Under systemd, meepo-web.socket passes the listening socket in (LISTEN_FDS) and this is ignored.
bind = ["unix:/run/meepo/gunicorn.sock"]
# 2 x 4, by numbers (docs/benchmarks.md "Search under wrk", `bench.search --client wrk --sweep`,
# 1 M products, 8 keep-alive connections): server CPU per unique search was the same within
# noise for 2x4, 2x1, 3x2 and 4x1 (45-55 ms; no GIL cost visible per request), and 2x4 and 3x2
# were the ones that kept both cores busy (43-44 searches/s; with 1 thread a worker serves its
# keep-alive connections one at a time and 2x1 used one core). 3x2 costs a third worker's
# private memory (torch buffers, the ONNX session, caches) for nothing measurable.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
preload_app = True

# A text search takes milliseconds and a photo search well under a second; 30 s only catches
# a wedged worker. graceful_timeout lets in-flight requests finish on restart.
timeout = 30
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so slow leaks (allocator fragmentation) never reach the 4 GB
# ceiling. A worker's start (index, keyword index, ONNX session) costs seconds of CPU, and cached
# pages are served at hundreds per second: at 5,000 requests both workers restarted within the
# same minute, over and over, and p99 reached 7 s (bench.load, 2026-12-02). So rarely, and with a
# jitter as wide as half the period, so the two workers' restarts do not coincide.
max_requests = 100_000
max_requests_jitter = 50_000
# The heartbeat file on tmpfs: a busy disk must not make the master think a worker hung.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# nginx writes the access log; gunicorn's errors and Django's logs go to stderr -> journald.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("MEEPO_LOG_LEVEL", "info").lower()
proc_name = "meepo-web"


# torch threads for each worker; the master must not start torch's thread pool (see when_ready).
_torch_threads = 1
# gc.freeze() before each fork: the master's objects (Django, the preloaded CLIP model's modules,
# ≈ 0.4 M of them) live as long as the workers, yet every full collection in a worker walks
# them all (≈ 200 ms at 1 M products, one request stalled, p99) and writes their headers, which
# un-shares the copy-on-write pages. Frozen, the collector skips them (CPython docs, gc.freeze).
_gc_freeze = os.environ.get("MEEPO_GC_FREEZE", "true").strip().lower() in ("1", "true", "yes", "on")


def when_ready(server):
    """Load the CLIP model in the master, before the workers fork, so they share its memory.

    torch's intra-op thread pool does not survive a fork ("Invalid thread pool!" in the
    workers), so the master loads the model without setting its threads and each worker sets
    them in post_fork. A missing model is not fatal: keyword search still works and /healthz
    says what is wrong.
    """
    global _torch_threads
    from django.conf import settings

    from search.exceptions import ModelNotAvailable

    _torch_threads = settings.MEEPO_TORCH_THREADS or 1
    settings.MEEPO_TORCH_THREADS = 0
    try:
        from search import encoder as encoder_module
        from search import encoder_onnx

        # ONNX Runtime must not be imported before the fork (a forked child of a process that
        # did hangs or aborts at exit): the master only exports it; post_fork opens it.
        encoder_onnx.DEFER_ONNX = True
        encoder = encoder_module.get_encoder()
    except (ImportError, ModelNotAvailable, OSError) as exc:
        server.log.warning("CLIP model %s not loaded: %s", settings.MEEPO_CLIP_MODEL, exc)
        return
    server.log.info(
        "CLIP model %s loaded in the master (dim %s): %s",
        encoder.model_name,
        encoder.dim,
        encoder.describe(),
    )


def pre_fork(server, worker):
    if _gc_freeze:
        gc.freeze()


def post_fork(server, worker):
    """Per worker: its own torch threads, and no database handle inherited from the master."""
    from django.db import connections

    connections.close_all()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(_torch_threads)
    encoder_module = sys.modules.get("search.encoder")
    encoder = encoder_module.loaded_encoder() if encoder_module else None
    if encoder is not None:  # this worker's ONNX text session, gated against fp32 here
        encoder_module.activate_text_runtime(encoder)
