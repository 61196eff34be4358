"""Settings: every variable is read here, once, with its type and a default
that works on a laptop with nothing installed (SQLite, local-memory cache,
eager Celery). The rest of the code reads ``settings.X``."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-change-me-validator-endpoint")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # admin tokens for /api/admin/ scripts (staff only)
    "django_filters",
    "endpoint",
    "keys",
    "logs",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
# Connections live in the fixed pool of DB threads (endpoint.db) and are kept
# open. No ping before each use (a round trip per query); a connection that
# errored is checked and replaced before its next use (close_old_connections).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DB_THREADS = env.int("DB_THREADS", default=8)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL

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

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Request bodies above this size answer 413 (DESIGN §8).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1024 * 1024)
MAX_MINER_RESPONSE_BYTES = env.int("MAX_MINER_RESPONSE_BYTES", default=2 * 1024 * 1024)

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "endpoint.api.errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "django.db.backends": {"level": "WARNING"}},
}

# Celery beat: keep the Neuron rows (and every process's view of them) fresh.
METAGRAPH_SYNC_SECONDS = env.int("METAGRAPH_SYNC_SECONDS", default=300)
CELERY_BEAT_SCHEDULE = {
    "sync-metagraph": {"task": "endpoint.sync_metagraph", "schedule": METAGRAPH_SYNC_SECONDS},
}
