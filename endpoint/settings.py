"""Settings: every variable is read here, once, with its type and a default
that works on a laptop with nothing installed (SQLite, local-memory cache,
eager Celery). The rest of the code reads ``settings.X``."""

import logging
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# `make run` remembers its choices in .env (the environment wins over it). The
# test suite names its own services: under pytest (which sets PYTEST_VERSION
# for itself and the processes it starts) a developer's .env is not read.
if not os.environ.get("PYTEST_VERSION"):
    environ.Env.read_env(os.environ.get("ENV_FILE") or BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
DEVELOPMENT_SECRET_KEY = "dev-insecure-change-me-validator-endpoint"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
# Sessions, password-reset links and the stored secrets all rest on it: a
# deployment with a key anyone can read in this repository is refused.
if not DEBUG and SECRET_KEY.strip() in ("", DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a secret of your own when DEBUG is off, e.g. the output of "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
# Previous SECRET_KEYs, comma-separated: sessions signed with them and secrets
# stored under them stay valid after a rotation (endpoint/core/encryption.py).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# The key for secrets at rest (hotkey mnemonic, OpenAI key); empty: SECRET_KEY.
SECRETS_ENCRYPTION_KEY = env.str("SECRETS_ENCRYPTION_KEY", default="")
# Earlier keys that only read stored secrets, comma-separated: unlike
# SECRET_KEY_FALLBACKS they sign nothing (sessions, password resets).
SECRETS_ENCRYPTION_KEY_FALLBACKS = env.list("SECRETS_ENCRYPTION_KEY_FALLBACKS", default=[])
# A laptop (DEBUG on) answers on loopback names; a deployment must say which
# host names it answers to, or it refuses to start.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must be set when DEBUG is off, e.g. ALLOWED_HOSTS=api.example.com (comma-separated)"
    )

INSTALLED_APPS = [
    "endpoint.apps.ConsoleAdminConfig",  # Django's admin, branded, without the apps nobody uses there
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rest_framework.authtoken",  # admin tokens for /api/admin/ scripts (staff only)
    "django_filters",
    "rangefilter",  # the request logs' from/to date filter
    "corsheaders",
    "endpoint",
    "keys",
    "logs",
    "chat",
    "billing",
    # Browser accounts: email + password, and Google/GitHub when configured below.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "endpoint.middleware.refuse_nul_characters",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "chat.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "endpoint.urls"
ASGI_APPLICATION = "endpoint.asgi.application"
WSGI_APPLICATION = "endpoint.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Connections live in the fixed pool of DB threads (endpoint.core.db) and are kept
# open. No ping before each use (a round trip per query); a connection that
# errored is checked and replaced before its next use (close_old_connections).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DB_THREADS = env.int("DB_THREADS", default=8)
# The server's event-loop pool (endpoint.core.asyncdb) for the two statements of
# every API call: at most DB_THREADS connections per worker, and how long a
# call waits for one before it fails.
DB_POOL_TIMEOUT_SECONDS = env.float("DB_POOL_TIMEOUT_SECONDS", default=5.0)
# Whether each API call's request log and charge wait for PostgreSQL to flush
# them to disk before the answer leaves (endpoint.core.asyncdb.ASYNC_COMMIT). Off,
# they are committed before the answer leaves all the same, so a crash of this
# server loses none; a crash of PostgreSQL itself (or of its machine) can lose
# the last ~0.6 s of them (3 x wal_writer_delay), logs and charges together.
# On, that too is covered, for about 0.4 ms more per call.
LOG_SYNCHRONOUS_COMMIT = env.bool("LOG_SYNCHRONOUS_COMMIT", default=False)
# A worker that has been quiet this long after serving requests gives its
# freed heap back to the system (endpoint.heap); 0 never does.
HEAP_TRIM_IDLE_SECONDS = env.float("HEAP_TRIM_IDLE_SECONDS", default=2.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Connections to Redis per worker event loop; a call waits for a free one
# (at most RATE_LIMIT_REDIS_TIMEOUT) rather than opening more.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=32)
if REDIS_URL:
    # Redis down: reads miss and writes are dropped, logged once a minute,
    # so sign-in and the pages keep working (endpoint.core.cache).
    _CACHE = {"BACKEND": "endpoint.core.cache.ForgivingRedisCache", "LOCATION": REDIS_URL}
else:
    _CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
CACHES = {
    "default": _CACHE,
    # The page abuse limits' counters (django-ratelimit), kept under the
    # gateway limiter's "ratelimit:" namespace in Redis.
    "ratelimit": {**_CACHE, "KEY_PREFIX": "ratelimit:pages"},
}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
# Celery's workers keep Django's LOGGING (JSON when asked, secrets masked).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

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
# Dates as 2026-12-02 19:45:07 in every page (the admin's lists and details):
# Django's English format shows times to the minute. REST and CSV use ISO 8601.
FORMAT_MODULE_PATH = "endpoint.core.formats"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# Served by whitenoise: hashed names (cached forever) and gzip/brotli copies,
# written by collectstatic (`manage.py start` runs it). Until then pages link
# the plain names, so tests and a fresh checkout work (endpoint.staticfiles).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "endpoint.staticfiles.CompressedHashedStaticFilesStorage"},
}

# Production (DEBUG off): HTTPS only, each switchable for a TLS-terminating proxy
# or a plain-HTTP test deployment.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes and scrapers speak plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Request bodies above this size answer 413 (DESIGN §8).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1024 * 1024)
# endpoint.body_limit cuts every body at the limit before Django reads it; at
# this size Django keeps what passes in memory instead of a temporary file.
FILE_UPLOAD_MAX_MEMORY_SIZE = max(DATA_UPLOAD_MAX_MEMORY_SIZE, 2_621_440)
MAX_MINER_RESPONSE_BYTES = env.int("MAX_MINER_RESPONSE_BYTES", default=2 * 1024 * 1024)
# Audio uploads to /v1/audio/transcriptions (OpenAI's own limit), the only
# bodies allowed past MAX_REQUEST_BYTES.
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=25 * 1024 * 1024)
UPLOAD_PATHS = ("/v1/audio/transcriptions",)
# Images and audio from miners; a text answer stays under MAX_MINER_RESPONSE_BYTES.
MAX_MEDIA_RESPONSE_BYTES = env.int("MAX_MEDIA_RESPONSE_BYTES", default=32 * 1024 * 1024)
# How long an image answered as a ``url`` can be fetched from the endpoint.
MEDIA_URL_SECONDS = env.int("MEDIA_URL_SECONDS", default=3600)

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "endpoint.api.errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["endpoint.api.parsers.BoundedJSONParser"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# CORS for browser apps calling the API with a key: off until origins are named.
# Only the key-authenticated routes; pages and the admin API stay same-origin.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(chat|v1/.*)$"
# What OpenAI's own browser clients send, besides the usual few.
CORS_ALLOW_HEADERS = (
    *("accept", "authorization", "content-type", "user-agent", "endpoint-version", "x-request-id"),
    "x-client-request-id",
    *("openai-organization", "openai-project", "openai-beta", "x-stainless-retry-count", "x-stainless-timeout"),
    *("x-stainless-lang", "x-stainless-package-version", "x-stainless-os", "x-stainless-arch"),
    *("x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-helper-method"),
)
CORS_EXPOSE_HEADERS = (
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    *("x-request-id", "x-client-request-id", "openai-processing-ms", "x-should-retry"),
)
CORS_PREFLIGHT_MAX_AGE = env.int("CORS_PREFLIGHT_MAX_AGE", default=600)

# OpenAPI: every DRF view is listed (the gateway routes describe themselves in
# endpoint.api.schema; plain Django views such as /health/* are added by its hook).
SPECTACULAR_SETTINGS = {
    "TITLE": "Validator Endpoint API",
    "DESCRIPTION": "Prompt a Bittensor subnet through a validator: seed-compatible /chat and OpenAI-compatible /v1.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "endpoint.api.schema.add_plain_views",
        "endpoint.api.schema.add_management_errors",
    ],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key: vep_…"}}
    },
}

# Bittensor side. These seed the EndpointConfig row on first use; after that
# the operator changes them with `manage.py config set` or the admin.
BT_NETWORK = env.str("BT_NETWORK", default="local")
BT_NETUID = env.int("BT_NETUID", default=1)
BT_METAGRAPH_FILE = env.str("BT_METAGRAPH_FILE", default="")
BT_WALLET_NAME = env.str("BT_WALLET_NAME", default="")
BT_WALLET_HOTKEY = env.str("BT_WALLET_HOTKEY", default="default")
BT_WALLET_PATH = env.str("BT_WALLET_PATH", default="~/.bittensor/wallets")
BT_HOTKEY_MNEMONIC = env.str("BT_HOTKEY_MNEMONIC", default="")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
MODERATION_TIMEOUT_SECONDS = env.float("MODERATION_TIMEOUT_SECONDS", default=3.0)
# How long a process trusts its in-memory copy of config and the metagraph.
CONFIG_CACHE_SECONDS = env.float("CONFIG_CACHE_SECONDS", default=5.0)
AUTH_CACHE_SECONDS = env.float("AUTH_CACHE_SECONDS", default=5.0)
# Redis down: serve requests without limits (False) or refuse them with 503 (True).
RATE_LIMIT_FAIL_CLOSED = env.bool("RATE_LIMIT_FAIL_CLOSED", default=False)
# Longest a rate-limit check waits on Redis before the fail-open/closed rule applies.
RATE_LIMIT_REDIS_TIMEOUT = env.float("RATE_LIMIT_REDIS_TIMEOUT", default=1.0)
METAGRAPH_CACHE_SECONDS = env.float("METAGRAPH_CACHE_SECONDS", default=10.0)
# /health/ready fails when the metagraph is older than this.
METAGRAPH_MAX_AGE_SECONDS = env.int("METAGRAPH_MAX_AGE_SECONDS", default=3600)

# Live miner statistics and the best:N strategy (endpoint/network/routing.py).
MINER_STATS_ALPHA = env.float("MINER_STATS_ALPHA", default=0.1)  # weight of the newest call
MINER_STATS_REFRESH_SECONDS = env.float("MINER_STATS_REFRESH_SECONDS", default=0.5)
ROUTING_MAX_RETRIES = env.int("ROUTING_MAX_RETRIES", default=2)
ROUTING_HEDGE = env.bool("ROUTING_HEDGE", default=True)
ROUTING_EXPLORATION = env.float("ROUTING_EXPLORATION", default=0.05)
ROUTING_COOLDOWN_FAILURES = env.int("ROUTING_COOLDOWN_FAILURES", default=3)
ROUTING_COOLDOWN_SECONDS = env.float("ROUTING_COOLDOWN_SECONDS", default=30.0)
ROUTING_COOLDOWN_MAX_SECONDS = env.float("ROUTING_COOLDOWN_MAX_SECONDS", default=300.0)
ROUTING_FORGET_SECONDS = env.float("ROUTING_FORGET_SECONDS", default=600.0)  # half-life of a miner's record
# Benchmarks only (tests/bench): upstream URLs of the bare forwarding view at
# /bench/floor/<index> (tests/bench/floor.py, served only under tests.bench.settings).
BENCH_FLOOR_UPSTREAMS = env.list("BENCH_FLOOR_UPSTREAMS", default=[])

# LOG_FORMAT=json: one JSON object a line, for log shippers. API keys and
# bearer tokens are masked in either format (endpoint.core.logformat).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT == "json":
    logging.captureWarnings(True)  # Python's warnings become log records too: JSON like the rest
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "endpoint.core.logformat.JsonFormatter"},
    },
    "filters": {
        "mask_secrets": {"()": "endpoint.core.logformat.MaskSecrets"},
        "no_client_error_tracebacks": {"()": "endpoint.core.logformat.NoClientErrorTracebacks"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        # Errors answered by endpoint.core.errors.log_answered are logged there,
        # once; what Django logs itself (a 403, a page's 404) carries no traceback.
        "django.request": {"filters": ["no_client_error_tracebacks"]},
    },
}

# Celery beat: keep the Neuron rows (and every process's view of them) fresh.
# METAGRAPH_SYNC_SECONDS and LOG_RETENTION_DAYS seed the config's
# `metagraph_sync_seconds` and `log_retention_days`; beat ticks and each task
# works only when the config (changed at runtime with `manage.py config set`)
# says it is due, so a change needs no beat restart.
METAGRAPH_SYNC_SECONDS = env.int("METAGRAPH_SYNC_SECONDS", default=300)
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=90)
BEAT_TICK_SECONDS = env.int("BEAT_TICK_SECONDS", default=30)
# A call's credits are held until it settles; a hold nobody settles (a server
# killed mid-call) is released this long after the call's own timeout.
HOLD_GRACE_SECONDS = env.int("HOLD_GRACE_SECONDS", default=60)
CELERY_BEAT_SCHEDULE = {
    "release-abandoned-holds": {"task": "logs.release_abandoned_calls", "schedule": 60},
    "sync-metagraph": {"task": "endpoint.sync_metagraph_when_due", "schedule": BEAT_TICK_SECONDS},
    "purge-request-logs": {"task": "logs.purge_request_logs", "schedule": 3600},
    # Does nothing until the operator stores a seed and a rate (`manage.py tao`).
    "scan-tao-deposits": {"task": "billing.scan_tao_deposits", "schedule": 60},
}

# Prometheus (/metrics). With several server processes each writes its
# counters to files in this directory and a scrape sums them; `manage.py
# start --workers N` creates one. Empty: counters live in the process.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# When set, /metrics wants `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Browser accounts and the chat pages ------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # the admin's username login
    "allauth.account.auth_backends.AuthenticationBackend",  # email login on /accounts/
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "chat-home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = True  # the link in the email confirms at once
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
# allauth's own limits ("N/period/ip|key", period s, m, h or d; several
# comma-separated). Failed logins: at most 10 a minute from one IP and 5 in
# 5 minutes for one email. Sign-ups: 5 an hour from one IP. Password reset
# requests: 5 an hour from one IP and 3 an hour for one email. Over a limit,
# allauth answers 429 with a page saying to try again later.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env.str("ACCOUNT_LOGIN_FAILED_RATE", default="10/m/ip,5/5m/key"),
    "signup": env.str("ACCOUNT_SIGNUP_RATE", default="5/h/ip"),
    "reset_password": env.str("ACCOUNT_RESET_PASSWORD_RATE", default="5/h/ip,3/h/key"),
}
# The chat pages' abuse limits, per signed-in user (django-ratelimit, fixed
# windows; "N/s|m|h|d"): prompts sent from /app/, and keys created on
# /app/keys/ and POST /api/keys/ together. Over a limit: 429.
CHAT_SEND_RATE = env.str("CHAT_SEND_RATE", default="60/m")
KEY_CREATE_RATE = env.str("KEY_CREATE_RATE", default="10/h")
CARD_PAYMENT_RATE = env.str("CARD_PAYMENT_RATE", default="10/h")
INSTALLED_APPS += ["django_ratelimit"]  # for its system checks of the cache it is given
RATELIMIT_USE_CACHE = "ratelimit"
# Redis down: the pages stay usable without these limits; what costs credits
# is still held by the gateway's limiter (RATE_LIMIT_FAIL_CLOSED).
RATELIMIT_FAIL_OPEN = True
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit knows only django_redis by name; Django's own RedisCache
    # (ours subclasses it) has the atomic INCR it needs.
    "django_ratelimit.W001",
]
if not REDIS_URL:
    # A laptop without Redis counts in each process's memory: good enough for
    # one developer, which is all that setup serves.
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True  # a provider's verified email logs into the same account
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # a social login starts with a POST (CSRF-checked)
# Google and GitHub buttons appear only when their client id and secret are set.
SOCIALACCOUNT_PROVIDERS: dict = {}
for _provider in ("google", "github"):
    _client_id = env.str(f"{_provider.upper()}_CLIENT_ID", default="")
    _secret = env.str(f"{_provider.upper()}_CLIENT_SECRET", default="")
    if _client_id and _secret:
        SOCIALACCOUNT_PROVIDERS[_provider] = {"APPS": [{"client_id": _client_id, "secret": _secret}]}
SOCIALACCOUNT_PROVIDERS.setdefault("github", {})["SCOPE"] = ["user:email"]

# Email: printed to the console unless EMAIL_URL names an SMTP server
# (smtp+tls://user:password@smtp.example.com:587).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Validator Endpoint <noreply@localhost>")

# Browser sessions end after this many seconds (default a week).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=7 * 24 * 3600)
# Where the stripe library and the billing page's Stripe.js reach Stripe:
# changed only to point tests and laptops at a local fake (localstripe).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
# Seconds a webhook's signature stays valid (Stripe's library default): an older replay is refused.
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
# Credits a new chat user starts with, on the key that pays for their chat.
CHAT_SIGNUP_CREDITS = env.int("CHAT_SIGNUP_CREDITS", default=100)
# The chat pages need their static/ files in every run, collected or not: a
# laptop (DEBUG) and the test suite serve them from the source folders; a
# deployment serves what collectstatic wrote.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
