"""Meepo settings: one file, every environment differs only by MEEPO_* environment variables.

Defaults are safe for production (DEBUG off, no hosts allowed, no secret key). A developer's
convenience comes from a git-ignored `.env` copied from `.env.example`, which lists every variable.
"""

import ipaddress
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("MEEPO_DEBUG", default=False)
SECRET_KEY = env.str("MEEPO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "MEEPO_SECRET_KEY is not set. Set it in /etc/meepo/env (production) or .env "
            "(development; copy .env.example), or set MEEPO_DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = env.list("MEEPO_ALLOWED_HOSTS", default=[])
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
if not ALLOWED_HOSTS:
    # Django would boot and answer every request with 400; failing at startup is clearer.
    raise ImproperlyConfigured(
        "MEEPO_ALLOWED_HOSTS is not set. List the site's host names, comma-separated, in "
        "/etc/meepo/env (production) or .env, e.g. MEEPO_ALLOWED_HOSTS=search.example.com."
    )
CSRF_TRUSTED_ORIGINS = env.list("MEEPO_CSRF_TRUSTED_ORIGINS", default=[])

# Behind nginx with TLS in production; off by default so a plain-HTTP demo on 127.0.0.1 works.
MEEPO_HTTPS = env.bool("MEEPO_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = MEEPO_HTTPS
SECURE_SSL_REDIRECT = env.bool("MEEPO_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("MEEPO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
if MEEPO_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): only our own scripts, styles, fonts and XHR (htmx), images
# from us plus the inline `data:` placeholders; no inline scripts, styles or handlers, no eval,
# no plugins, no framing, forms post only to us. templates/ hold no inline code for this reason.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
# Permissions-Policy (django-permissions-policy): the site uses no device or tracking feature.
PERMISSIONS_POLICY = {
    name: []
    for name in (
        "accelerometer", "autoplay", "browsing-topics", "camera", "display-capture",
        "encrypted-media", "fullscreen", "geolocation", "gyroscope", "magnetometer",
        "microphone", "midi", "payment", "picture-in-picture", "publickey-credentials-get",
        "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
    )
}  # fmt: skip

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "catalog",
    "search",
    "pipeline",
    "demo",  # demo and test tools (fake shop, random models): `make run`, tests, benchmarks
    "axes",
]

MIDDLEWARE = [  # meepo.*: cheaper drop-ins for django-csp's and Django's (meepo/middleware.py)
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "meepo.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "meepo.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "meepo.middleware.AuthenticationMiddleware",
    "meepo.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: counts failed admin logins and locks the client out.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "meepo.urls"
WSGI_APPLICATION = "meepo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Everything the app writes lives under one directory, never in the checkout in production.
MEEPO_DATA_DIR = Path(env.str("MEEPO_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
MEEPO_DATA_DIR.mkdir(parents=True, exist_ok=True)

# SQLite in MEEPO_DATA_DIR by default (one VPS); MEEPO_DATABASE_URL=postgres://user:pass@host/db
# moves the whole app to PostgreSQL (several machines; see docs/deploy.md "Beyond one machine").
MEEPO_DATABASE_URL = env.str("MEEPO_DATABASE_URL", default="")
if MEEPO_DATABASE_URL:
    _db = env.db_url_config(MEEPO_DATABASE_URL)
    _db["CONN_MAX_AGE"] = env.int("MEEPO_DB_CONN_MAX_AGE", default=600)
    _db["CONN_HEALTH_CHECKS"] = True
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # A statement stuck on a lock fails after MEEPO_DB_TIMEOUT instead of hanging a worker.
        _db.setdefault("OPTIONS", {})["options"] = (
            f"-c lock_timeout={env.int('MEEPO_DB_TIMEOUT', default=20) * 1000}"
        )
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": MEEPO_DATA_DIR / "db.sqlite3",
            # Keep each worker thread's connection: a new one per request re-runs the PRAGMAs
            # below and starts with a cold page cache, ~15 ms of every search at 1M products.
            # Outside a transaction an idle SQLite connection holds no lock.
            "CONN_MAX_AGE": env.int("MEEPO_DB_CONN_MAX_AGE", default=600),
            "CONN_HEALTH_CHECKS": True,
            # A file, not :memory:, so tests see WAL and cross-process locking as production does.
            "TEST": {"NAME": str(MEEPO_DATA_DIR / "test-db.sqlite3")},
            "OPTIONS": {
                # WAL lets the cron pipeline write while web workers read; IMMEDIATE takes the
                # write lock at BEGIN so two writers queue on busy_timeout instead of failing
                # mid-transaction with "database is locked"; synchronous=NORMAL is durable
                # enough under WAL.
                "transaction_mode": "IMMEDIATE",
                "timeout": env.int("MEEPO_DB_TIMEOUT", default=20),
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA cache_size=-16000; "
                    "PRAGMA mmap_size=268435456;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "meepo.staticfiles.BuiltAssetsFinder",  # STATICFILES_DIRS minus the Tailwind source
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
STATIC_ROOT = MEEPO_DATA_DIR / "staticfiles"
MEDIA_URL = "/media/"
# Thumbnails. In distributed mode every worker and web node must see one media store: mount one
# shared directory (NFS, CephFS…) at the same path everywhere (docs/pipeline.md "Distributed mode").
MEDIA_ROOT = Path(env.str("MEEPO_MEDIA_ROOT", default="") or MEEPO_DATA_DIR / "media").resolve()
# Serve MEDIA_ROOT (thumbnails) from Django itself: the demo, tests and a box without nginx.
MEEPO_SERVE_MEDIA = env.bool("MEEPO_SERVE_MEDIA", default=DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploads for search-by-photo are read in memory and never stored.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("MEEPO_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
# Memory only, end to end: no handler that spools to a temporary file (a bigger file is dropped
# and refused); nginx's client_body_buffer_size on the upload URLs matches (deploy/nginx).
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
# A shopper's photo may have at most this many pixels, well below the crawler's
# MEEPO_MAX_IMAGE_PIXELS: a web worker decodes it while shoppers wait.
MEEPO_MAX_UPLOAD_PIXELS = env.int("MEEPO_MAX_UPLOAD_PIXELS", default=16_000_000)
# Photo searches decoded and encoded at once per worker process; more wait up to
# MEEPO_UPLOAD_WAIT_SECONDS, then get 429 (bounds a worker's memory whatever its threads).
MEEPO_UPLOAD_CONCURRENCY = env.int("MEEPO_UPLOAD_CONCURRENCY", default=1)
MEEPO_UPLOAD_WAIT_SECONDS = env.float("MEEPO_UPLOAD_WAIT_SECONDS", default=5.0)
# /healthz details (model, index, database errors) go to loopback clients and to requests with
# "Authorization: Bearer <this token>"; everyone else sees the status only. Empty = loopback only.
MEEPO_HEALTH_TOKEN = env.str("MEEPO_HEALTH_TOKEN", default="")
# Several web nodes: the load balancer's address(es) or range(s) (search/security.py): requests
# from them carry the shopper's address in X-Forwarded-For, as from a local nginx. Empty = loopback only.
MEEPO_TRUSTED_PROXIES = env.list("MEEPO_TRUSTED_PROXIES", default=[])
try:
    MEEPO_TRUSTED_PROXIES = [
        str(ipaddress.ip_network(net, strict=False)) for net in MEEPO_TRUSTED_PROXIES
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"MEEPO_TRUSTED_PROXIES: {exc}") from exc

# --- Admin login lockout (django-axes) ------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("MEEPO_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("MEEPO_LOGIN_LOCKOUT_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
# Behind nginx every request comes from the proxy; the client is the address nginx saw.
AXES_CLIENT_IP_CALLABLE = "search.security.client_address"

# --- CLIP encoder and index ---------------------------------------------------------------
MEEPO_CLIP_MODEL = env.str("MEEPO_CLIP_MODEL", default="openai/clip-vit-base-patch32")
MEEPO_CLIP_DEVICE = env.str("MEEPO_CLIP_DEVICE", default="cpu")
MEEPO_TORCH_THREADS = env.int("MEEPO_TORCH_THREADS", default=0)
# int8 when it matches fp32 at load (auto), always (on) or never (off); search/encoder.py.
MEEPO_CLIP_QUANTIZE = env.str("MEEPO_CLIP_QUANTIZE", default="auto")
MEEPO_CLIP_PARITY_MIN = env.float("MEEPO_CLIP_PARITY_MIN", default=0.99)
# Text queries through ONNX Runtime when it passes the same parity gate (auto), onnx or torch.
MEEPO_CLIP_TEXT_RUNTIME = env.str("MEEPO_CLIP_TEXT_RUNTIME", default="auto")
# ONNX int8 activation scales fixed at export (static: a query's vector never moves with the
# queries it shares a pass with) or per pass (dynamic); concurrent text queries share passes.
MEEPO_CLIP_ONNX_INT8 = env.str("MEEPO_CLIP_ONNX_INT8", default="static")
MEEPO_CLIP_TEXT_COALESCE = env.bool("MEEPO_CLIP_TEXT_COALESCE", default=True)
MEEPO_EMBED_BATCH = env.int("MEEPO_EMBED_BATCH", default=32)
# Zero-shot attribute taxonomy (YAML); empty = MEEPO_DATA_DIR/taxonomy.yaml, else the shipped one.
MEEPO_ATTRIBUTE_TAXONOMY = env.str("MEEPO_ATTRIBUTE_TAXONOMY", default="")
MEEPO_FAISS_THREADS = env.int("MEEPO_FAISS_THREADS", default=1)
MEEPO_INDEX_MEMORY_MB = env.int("MEEPO_INDEX_MEMORY_MB", default=600)
MEEPO_INDEX_EXACT_MAX = env.int("MEEPO_INDEX_EXACT_MAX", default=20_000)
MEEPO_INDEX_IVF_FLAT_MAX = env.int("MEEPO_INDEX_IVF_FLAT_MAX", default=100_000)
MEEPO_INDEX_RECALL = env.float("MEEPO_INDEX_RECALL", default=0.95)
MEEPO_INDEX_IVF_FLAT_RECALL = env.float("MEEPO_INDEX_IVF_FLAT_RECALL", default=0.99)
MEEPO_INDEX_KEEP = env.int("MEEPO_INDEX_KEEP", default=3)
MEEPO_INDEX_RELOAD_SECONDS = env.float("MEEPO_INDEX_RELOAD_SECONDS", default=5.0)
# Web nodes pulling the builder's index (manage.py sync_index, docs/deploy.md "Several web nodes"):
# the builder's index URL, the most one version may download, and the connect/read timeout.
MEEPO_SYNC_FROM = env.str("MEEPO_SYNC_FROM", default="")
MEEPO_SYNC_MAX_MB = env.int("MEEPO_SYNC_MAX_MB", default=20_480)
MEEPO_SYNC_TIMEOUT_SECONDS = env.float("MEEPO_SYNC_TIMEOUT_SECONDS", default=30.0)
# Relevance floor for visual hits (search/relevance.py, docs/search.md "Relevance floor").
MEEPO_RELEVANCE_FLOOR = env.bool("MEEPO_RELEVANCE_FLOOR", default=True)
MEEPO_RELEVANCE_PERCENTILE = env.float("MEEPO_RELEVANCE_PERCENTILE", default=95.0)
MEEPO_RELEVANCE_MARGIN = env.float("MEEPO_RELEVANCE_MARGIN", default=0.08)
# Repeated searches (search/result_cache.py): finished responses kept this many seconds (0 = off)
# in this Django cache alias; the shown products' stock and price are re-checked on every hit.
MEEPO_SEARCH_PAGE_CACHE_SECONDS = env.int("MEEPO_SEARCH_PAGE_CACHE_SECONDS", default=60)
MEEPO_SEARCH_PAGE_CACHE_ALIAS = env.str("MEEPO_SEARCH_PAGE_CACHE_ALIAS", default="search_pages")
# Local memory per worker process: a hit costs ~0.01 ms of CPU against ~0.09 ms for the file
# cache (whose every write also lists the whole directory to cull it), and it needs nothing run
# beside the site; with two workers a repeat misses at most twice. The database cache would put
# a write on SQLite's single writer lock per new page. docs/search.md "Repeated searches".
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "search_pages": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "search-pages",
        # ~60 KB a page: at most ~30 MB per worker.
        "OPTIONS": {"MAX_ENTRIES": 500},
    },
}
# Owners of index hits, facets and store/brand/category filters from the columnar snapshot
# beside the index version (search/snapshot.py) instead of the database.
MEEPO_SEARCH_SNAPSHOT = env.bool("MEEPO_SEARCH_SNAPSHOT", default=True)
# Keyword search: "auto" = the served index version's tantivy index when it has one
# (search/keyword_engine.py), else the database; "database" = always FTS5 / tsvector.
# Map all of an index version's vectors.npy into each worker at load: "auto" when it is at most
# a quarter of MemAvailable (search.residency), "on" always, "off" never (pages fault in on use).
MEEPO_INDEX_PREFAULT = env.str("MEEPO_INDEX_PREFAULT", default="auto")
if MEEPO_INDEX_PREFAULT not in ("auto", "on", "off"):
    raise ImproperlyConfigured("MEEPO_INDEX_PREFAULT must be 'auto', 'on' or 'off'")
MEEPO_SEARCH_KEYWORD_ENGINE = env.str("MEEPO_SEARCH_KEYWORD_ENGINE", default="auto")
if MEEPO_SEARCH_KEYWORD_ENGINE not in ("auto", "database"):
    raise ImproperlyConfigured("MEEPO_SEARCH_KEYWORD_ENGINE must be 'auto' or 'database'")

# --- Crawler --------------------------------------------------------------------------------
MEEPO_BOT_NAME = env.str("MEEPO_BOT_NAME", default="MeepoBot")
MEEPO_BOT_URL = env.str("MEEPO_BOT_URL", default="https://meepo.example/bot")
MEEPO_BOT_EMAIL = env.str("MEEPO_BOT_EMAIL", default="bot@meepo.example")
MEEPO_CRAWL_DELAY = env.float("MEEPO_CRAWL_DELAY", default=3.0)
MEEPO_API_DELAY = env.float("MEEPO_API_DELAY", default=1.0)
MEEPO_REQUEST_TIMEOUT = env.float("MEEPO_REQUEST_TIMEOUT", default=30.0)
MEEPO_MAX_RESPONSE_BYTES = env.int("MEEPO_MAX_RESPONSE_BYTES", default=10 * 1024 * 1024)
# Politeness knobs (docs/scraping.md): jitter only lengthens gaps; AutoThrottle waits
# latency/target; 429/503 without Retry-After back off exponentially; a host that asks for a
# longer pause than MEEPO_MAX_PARK_SECONDS is left alone until the next run.
MEEPO_CRAWL_JITTER = env.float("MEEPO_CRAWL_JITTER", default=0.5)
MEEPO_AUTOTHROTTLE_TARGET = env.float("MEEPO_AUTOTHROTTLE_TARGET", default=0.5)
MEEPO_AUTOTHROTTLE_MAX_DELAY = env.float("MEEPO_AUTOTHROTTLE_MAX_DELAY", default=60.0)
MEEPO_MAX_RETRIES = env.int("MEEPO_MAX_RETRIES", default=2)
MEEPO_BACKOFF_BASE = env.float("MEEPO_BACKOFF_BASE", default=30.0)
MEEPO_BACKOFF_MAX = env.float("MEEPO_BACKOFF_MAX", default=1800.0)
MEEPO_MAX_PARK_SECONDS = env.float("MEEPO_MAX_PARK_SECONDS", default=900.0)
MEEPO_CIRCUIT_BREAKER_FAILURES = env.int("MEEPO_CIRCUIT_BREAKER_FAILURES", default=5)
# An open circuit leaves the host alone this long, across runs and commands (Host.parked_until).
MEEPO_CIRCUIT_COOLDOWN = env.float("MEEPO_CIRCUIT_COOLDOWN", default=6 * 3600.0)
# The longest robots.txt Crawl-delay / Request-rate gap we honour; a store asking for more is
# skipped (with the reason in the admin) unless Store.allow_long_crawl_delay crawls it at the cap.
MEEPO_MAX_CRAWL_DELAY = env.float("MEEPO_MAX_CRAWL_DELAY", default=60.0)
# Stores crawled at once (threads); each store stays sequential, one request at a time per host.
MEEPO_CRAWL_CONCURRENCY = env.int("MEEPO_CRAWL_CONCURRENCY", default=8)
# Stores whose hosts resolve to one IP address and port are crawled one after another.
MEEPO_CRAWL_GROUP_BY_IP = env.bool("MEEPO_CRAWL_GROUP_BY_IP", default=True)
MEEPO_MAX_REDIRECTS = env.int("MEEPO_MAX_REDIRECTS", default=5)
MEEPO_MAX_IMAGE_BYTES = env.int("MEEPO_MAX_IMAGE_BYTES", default=15 * 1024 * 1024)
# Width asked of image CDNs that can resize (Shopify ?width=, WooCommerce srcset); CLIP sees 224.
MEEPO_IMAGE_WIDTH = env.int("MEEPO_IMAGE_WIDTH", default=640)
# An image (by content hash) on at least this many products of one store is a size chart or logo.
MEEPO_SHARED_IMAGE_MIN_PRODUCTS = env.int("MEEPO_SHARED_IMAGE_MIN_PRODUCTS", default=3)
MEEPO_MAX_IMAGE_PIXELS = env.int("MEEPO_MAX_IMAGE_PIXELS", default=40_000_000)
# Bounds on one store's sitemaps (docs/scraping.md "Bounds against hostile stores"): page URLs
# taken from them per run (deduplicated, streamed) and sitemap files read per run.
MEEPO_MAX_URLS_PER_STORE = env.int("MEEPO_MAX_URLS_PER_STORE", default=50_000)
MEEPO_MAX_SITEMAPS_PER_STORE = env.int("MEEPO_MAX_SITEMAPS_PER_STORE", default=50)
# Longest side / shortest side beyond which a picture is refused (not padded): CLIP scales the
# shorter side to 224, so a 4000x1 strip would cost gigabytes (docs/deploy.md, Security model).
MEEPO_MAX_IMAGE_ASPECT = env.float("MEEPO_MAX_IMAGE_ASPECT", default=20.0)
# Loopback host:port pairs the crawler may reach (tests and the demo shop), e.g. 127.0.0.1:8765 or
# 127.0.0.1:*; private, link-local and metadata addresses stay refused whatever this says (SSRF).
MEEPO_ALLOWED_LOOPBACK = env.list("MEEPO_ALLOWED_LOOPBACK", default=[])
# The store `make run` (manage.py demo) crawls when the catalogue is empty; empty = bundled demo shop.
MEEPO_STORE_URL = env.str("MEEPO_STORE_URL", default="")

# --- Distributed mode: Celery workers over Redis (pipeline/distributed, docs/pipeline.md) -------
# Empty: one machine, the cron/systemd pipeline in one process. redis://host:6379/0 turns on the
# Celery tasks, the Redis host and builder locks, and `manage.py enqueue_cycle`.
MEEPO_BROKER_URL = env.str("MEEPO_BROKER_URL", default="")
if MEEPO_BROKER_URL and not MEEPO_BROKER_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("MEEPO_BROKER_URL must be a redis:// (or rediss://) URL.")
# Seconds a delivered task may stay unacknowledged before Redis hands it to another worker (a
# worker killed mid-task). Longer than the longest embed batch or index build.
MEEPO_TASK_VISIBILITY_TIMEOUT = env.int("MEEPO_TASK_VISIBILITY_TIMEOUT", default=7200)
# Assets per embed task: a CPU worker runs them MEEPO_EMBED_BATCH at a time, a CUDA worker in one
# fp16 forward pass (a GPU worker takes larger batches).
MEEPO_EMBED_TASK_BATCH = env.int("MEEPO_EMBED_TASK_BATCH", default=256)
CELERY_BROKER_URL = MEEPO_BROKER_URL
CELERY_RESULT_BACKEND = MEEPO_BROKER_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": MEEPO_TASK_VISIBILITY_TIMEOUT,
    # Sweep for abandoned (unacked, past the timeout) messages this often, on every sweep.
    "unacked_restore_interval": max(1, min(10, MEEPO_TASK_VISIBILITY_TIMEOUT // 3)),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ROUTES = {
    "pipeline.distributed.tasks.crawl_store": {"queue": "crawl"},
    "pipeline.distributed.tasks.download_store_images": {"queue": "crawl"},
    "pipeline.distributed.tasks.plan_embeds": {"queue": "embed"},
    "pipeline.distributed.tasks.embed_batch": {"queue": "embed"},
    "pipeline.distributed.tasks.build_and_publish": {"queue": "build"},
}

LOG_LEVEL = env.str("MEEPO_LOG_LEVEL", default="INFO").upper()
# The Hugging Face hub logs every retry twice (its own stderr handler and ours); a model that
# cannot be loaded is reported once, with what to do, by search.encoder. Set it to "warning" to
# see the hub's own messages.
os.environ.setdefault("HF_HUB_VERBOSITY", "error")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # logfmt-style key=value lines: journald adds the time, `journalctl -u meepo-web` and grep
        # or any log shipper can split them; the message stays last because it may hold spaces.
        "plain": {"format": "level=%(levelname)s logger=%(name)s pid=%(process)d msg=%(message)s"},
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {"django": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False}},
}
