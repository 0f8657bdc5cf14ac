"""Settings for the quantum service platform, driven by environment variables.

Without any environment the project runs as the embedded default: SQLite in WAL mode,
kombu's filesystem broker, the local process runtime and the payment simulator. Setting
`DATABASE_URL`, `CELERY_BROKER_URL`, `PLANQK_RUNTIME=docker` and the `STRIPE_*` keys switches
each part to its production counterpart without code changes.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from planqk_portal.install_keys import (
    FIELD_ENCRYPTION_KEY_FILE,
    SECRET_KEY_FILE,
    install_secret,
    new_fernet_key,
    new_secret_key,
)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/true/yes/on)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_number(name: str, default: Any, convert: Callable[[str], Any], what: str) -> Any:
    """An environment variable converted by ``convert``, ``default`` when unset or blank."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return convert(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be {what}, got {value!r}") from exc


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Read an integer environment variable, failing loudly (at startup) on garbage or below ``minimum``."""
    number = _env_number(name, default, int, "an integer")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {os.environ.get(name)!r}")
    return number


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    """Read a decimal environment variable within ``minimum``..``maximum``, failing loudly (at startup)."""
    number = _env_number(name, default, float, "a number")
    if not minimum <= number <= maximum:  # also refuses nan and inf
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {os.environ.get(name)!r}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list."""
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

# Production is the default, also for `make run`; contributors set DJANGO_DEBUG=true for
# development mode (tracebacks, unhashed static files). Tests run with DEBUG off (pytest-django).
DEBUG = env_bool("DJANGO_DEBUG", False)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Everything the platform writes (SQLite file, uploads, environments, broker folders) lives here.
PLANQK_DATA_DIR = Path(os.environ.get("PLANQK_DATA_DIR", BASE_DIR / "var")).resolve()
PLANQK_DATA_DIR.mkdir(parents=True, exist_ok=True)

# The signing key: DJANGO_SECRET_KEY, or one made for this install the first time it starts and
# kept in the data directory (mode 0600); never a key from the repository.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "") or install_secret(
    PLANQK_DATA_DIR / SECRET_KEY_FILE, new_secret_key
)

INSTALLED_APPS = [
    # Django
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Third party
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "django_htmx",
    "template_partials",
    # Platform
    "planqk_portal",
    "accounts",
    "services",
    "marketplace",
    "applications",
    "jobs",
    "datapools",
    "payments",
    "algorithms",
    "hosts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "planqk_portal.middleware.InvalidContentLengthMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "planqk_portal.urls"
WSGI_APPLICATION = "planqk_portal.wsgi.application"

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
                "planqk_portal.context_processors.platform",
            ],
        },
    }
]

# --- Database ---------------------------------------------------------------------------------
SQLITE_PATH = PLANQK_DATA_DIR / "db.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL and not DATABASE_URL.startswith("sqlite"):
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Lets the gateway's status query run as a prepared statement (Django's own cursors bind on
        # the client and never prepare). 0 turns it off, e.g. behind PgBouncer in transaction mode.
        _prepare = env_int("DATABASE_PREPARE_THRESHOLD", 5)
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = _prepare or None
else:
    if DATABASE_URL:
        SQLITE_PATH = Path(dj_database_url.parse(DATABASE_URL)["NAME"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            # Web server, worker and scheduler share one file: WAL lets readers run beside the
            # writer, IMMEDIATE transactions and a busy timeout avoid "database is locked".
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # A file, not memory, so that worker processes started by tests see the same data.
            "TEST": {"NAME": str(PLANQK_DATA_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing test passwords with PBKDF2 would dominate the suite's run time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Failed logins slow down with growing delays and never lock the owner out: "key" counts one
# account *from one address* (accounts/adapter.py), "ip" one address across accounts, sized so
# that an office behind one NAT is not blocked by a few typos. Counted in Django's cache (Redis
# when REDIS_URL is set). /admin/login/ goes through the same login (urls.py).
ACCOUNT_RATE_LIMITS = {
    "login_failed": "5/m/key,10/15m/key,20/h/key,40/d/key,30/m/ip,200/h/ip",
}
# Behind a proxy, allauth takes the client address from X-Forwarded-For when told how many
# proxies to trust (ALLAUTH_TRUSTED_PROXY_COUNT), else REMOTE_ADDR.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("ALLAUTH_TRUSTED_PROXY_COUNT", 0, minimum=0)
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "platform@localhost")

# Provider tokens are encrypted with Fernet. PLANQK_FIELD_ENCRYPTION_KEY may list several keys
# (comma-separated): the first encrypts, all decrypt (key rotation). Unset: derived from
# DJANGO_SECRET_KEY when that is set (as before, so hosts sharing it share the key), else a key
# made for this install and kept in the data directory. accounts/crypto.py also reads tokens an
# older install encrypted with the key derived from the signing key or the old development key.
PLANQK_FIELD_ENCRYPTION_KEY = os.environ.get("PLANQK_FIELD_ENCRYPTION_KEY", "")
if not PLANQK_FIELD_ENCRYPTION_KEY and not os.environ.get("DJANGO_SECRET_KEY"):
    PLANQK_FIELD_ENCRYPTION_KEY = install_secret(PLANQK_DATA_DIR / FIELD_ENCRYPTION_KEY_FILE, new_fernet_key)

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", PLANQK_DATA_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Files at the site's root (favicon.ico), served by WhiteNoise like the static files.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
# Stored files (uploads, data pool files) are never served from here: every download goes
# through a view with the permission check (planqk_portal/downloads.py). The URL only exists
# because storages need one.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", PLANQK_DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
if os.environ.get("AWS_STORAGE_BUCKET_NAME"):
    # S3-compatible object storage for uploads (django-storages reads the AWS_* variables).
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}
    AWS_STORAGE_BUCKET_NAME = os.environ["AWS_STORAGE_BUCKET_NAME"]
    AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL") or None
    AWS_S3_REGION_NAME = os.environ.get("AWS_S3_REGION_NAME") or None
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
# Downloads (planqk_portal/downloads.py): presigned S3 links live this long; behind a proxy,
# PLANQK_SENDFILE=x-accel-redirect (nginx, internal location PLANQK_SENDFILE_PREFIX aliasing
# MEDIA_ROOT) or x-sendfile (Apache, lighttpd) lets the proxy send the checked file.
PLANQK_DOWNLOAD_URL_SECONDS = env_int("PLANQK_DOWNLOAD_URL_SECONDS", 60, minimum=1)
PLANQK_SENDFILE = os.environ.get("PLANQK_SENDFILE", "").strip().lower()
if PLANQK_SENDFILE not in {"", "none", "x-accel-redirect", "x-sendfile"}:
    raise ImproperlyConfigured(f"PLANQK_SENDFILE must be x-accel-redirect, x-sendfile or none, got {PLANQK_SENDFILE!r}")
PLANQK_SENDFILE_PREFIX = os.environ.get("PLANQK_SENDFILE_PREFIX", "/protected-media/")
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024  # gateway bodies carry up to 1 MB data + 1 MB params

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.PersonalAccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.authentication.HasApiScope",
    ],
    "DEFAULT_SCHEMA_CLASS": "planqk_portal.api_schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "planqk_portal.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quantum Service Platform API",
    "DESCRIPTION": "REST API of the portal, used by the `planqk` CLI. Authenticate with a personal "
    "access token: `Authorization: Bearer <token>` or `X-Auth-Token: <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Implementations and data pools both have a "visibility" with different choices.
    "ENUM_NAME_OVERRIDES": {
        "ImplementationVisibilityEnum": "algorithms.models.Visibility",
        "DataPoolVisibilityEnum": "datapools.models.Visibility",
    },
}

# --- OAuth2 (token endpoint of the gateway) ---------------------------------------------------
# Token requests per client and minute (a token lives an hour; more is a misbehaving client or
# someone guessing its secret): the next one is 429 with Retry-After. 0: no limit.
PLANQK_TOKEN_REQUESTS_PER_MINUTE = env_int("PLANQK_TOKEN_REQUESTS_PER_MINUTE", 10, minimum=0)
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "SCOPES": {"default": "Call subscribed services"},
    "DEFAULT_SCOPES": ["default"],
    # RFC 9700 (OAuth 2.0 Security BCP): access tokens are stored only as SHA-256 checksums
    # (look them up by `token_checksum`), no implicit or password grants, https redirects only.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}
# Consumer secrets are long random strings: one salted SHA-256 is enough, where PBKDF2 would cost
# a token request about a second of CPU. Appended, so user passwords keep the default hasher.
PASSWORD_HASHERS = [
    *(PASSWORD_HASHERS if TESTING else global_settings.PASSWORD_HASHERS),
    "applications.hashers.ConsumerSecretHasher",
]
OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"] = "consumer_sha256"
# Named explicitly: migrations of apps that point at these models resolve them by setting.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# --- Celery -----------------------------------------------------------------------------------
PLANQK_JOB_MAX_TIMEOUT = env_int("PLANQK_JOB_MAX_TIMEOUT", 3600)
PLANQK_BUILD_TIMEOUT = env_int("PLANQK_BUILD_TIMEOUT", 1800)
_BROKER_DIR = PLANQK_DATA_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
# How often a worker looks into the filesystem broker's folder (the embedded default): a job waits
# half of it on average before a worker claims it. 0.1 s cost a warm sum job ~35 ms of its ~80
# (bench/results/jobs.md); 0.02 s costs an idle worker ~0.3 % more of one core.
PLANQK_BROKER_POLL_SECONDS = env_float("PLANQK_BROKER_POLL_SECONDS", 0.02, minimum=0.005, maximum=5.0)
if CELERY_BROKER_URL.startswith("filesystem"):
    for sub in ("queue", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(_BROKER_DIR / "control"),
        # kombu looks into the folder once a second by default: every job and build waited ~0.5 s
        # for nothing (bench/results/jobs.md).
        "polling_interval": PLANQK_BROKER_POLL_SECONDS,
    }
else:
    # An unacknowledged task is redelivered after this; it must outlast the longest job.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": max(PLANQK_JOB_MAX_TIMEOUT, PLANQK_BUILD_TIMEOUT) + 600}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False  # the reaper, not a redelivery loop, finishes lost work
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = max(PLANQK_JOB_MAX_TIMEOUT, PLANQK_BUILD_TIMEOUT) + 60
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
# Each test run gets a private queue so parallel runs on one broker never take each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("PLANQK_QUEUE") or (f"test-{os.getpid()}" if TESTING else "planqk")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(PLANQK_DATA_DIR / "celerybeat-schedule")
PLANQK_REAPER_INTERVAL = env_int("PLANQK_REAPER_INTERVAL", 30)
CELERY_BEAT_SCHEDULE = {
    "reaper": {"task": "planqk_portal.tasks.reap", "schedule": timedelta(seconds=PLANQK_REAPER_INTERVAL)},
    # Invoices closed billing periods (calendar months) and charges open invoices; safe to repeat.
    "payments-billing": {"task": "payments.tasks.run_billing", "schedule": timedelta(hours=1)},
}

# --- Redis (rate limits, shared counters) -----------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(PLANQK_DATA_DIR / "cache"),
        }
    }

# --- Runtimes and builds ----------------------------------------------------------------------
PLANQK_RUNTIME = os.environ.get("PLANQK_RUNTIME", "local")
# What this host's workers run, so routing (hosts.routing) sends them only what they can: the
# runtimes whose executions they take (comma separated; default PLANQK_RUNTIME, the runtime new
# builds use, the same on every host) and the pinned queues of services an operator sent to them.
PLANQK_HOST_RUNTIMES = [r.strip() for r in os.environ.get("PLANQK_HOST_RUNTIMES", "").split(",") if r.strip()] or [
    PLANQK_RUNTIME
]
PLANQK_WORKER_QUEUES = [q.strip() for q in os.environ.get("PLANQK_WORKER_QUEUES", "").split(",") if q.strip()]
try:
    from hosts.routing import QUEUE_NAME_RE
    from runtimes.base import RUNTIME_CLASSES as _RUNTIMES

    for _name in PLANQK_HOST_RUNTIMES:
        if _name not in _RUNTIMES:
            raise ValueError(f"unknown runtime {_name!r}; choose from {', '.join(sorted(_RUNTIMES))}")
    for _name in PLANQK_WORKER_QUEUES:
        if not QUEUE_NAME_RE.fullmatch(_name):
            raise ValueError(f"{_name!r} is not a queue name (1-40 lower-case letters, digits and dashes)")
except ValueError as _exc:
    raise ImproperlyConfigured(f"PLANQK_HOST_RUNTIMES / PLANQK_WORKER_QUEUES: {_exc}") from None
PLANQK_BASE_IMAGE = os.environ.get("PLANQK_BASE_IMAGE", "planqk/python-base:3.11")
PLANQK_BUILD_NETWORK = os.environ.get("PLANQK_BUILD_NETWORK", "host")
# Where Docker builds push their images and other hosts pull them by digest: host[:port][/path]
# (e.g. 127.0.0.1:5000/planqk), the same on every host. Empty: images stay in the building
# host's engine (one engine for every worker). Credentials only when the registry wants them.
PLANQK_DOCKER_REGISTRY = os.environ.get("PLANQK_DOCKER_REGISTRY", "").strip()
if PLANQK_DOCKER_REGISTRY:
    from runtimes.docker import parse_registry

    try:
        PLANQK_DOCKER_REGISTRY = parse_registry(PLANQK_DOCKER_REGISTRY)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"PLANQK_DOCKER_REGISTRY: {_exc}") from None
PLANQK_DOCKER_REGISTRY_USERNAME = os.environ.get("PLANQK_DOCKER_REGISTRY_USERNAME", "")
PLANQK_DOCKER_REGISTRY_PASSWORD = os.environ.get("PLANQK_DOCKER_REGISTRY_PASSWORD", "")
_HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PLANQK_BUILD_CA_BUNDLE = os.environ.get(
    "PLANQK_BUILD_CA_BUNDLE", _HOST_CA_BUNDLE if Path(_HOST_CA_BUNDLE).exists() else ""
)
PLANQK_PIP_INDEX_URL = os.environ.get("PLANQK_PIP_INDEX_URL", "")
PLANQK_PIP_EXTRA_INDEX_URL = os.environ.get("PLANQK_PIP_EXTRA_INDEX_URL", "")
# Package indexes a provider's requirements.txt may name (--index-url / --extra-index-url lines),
# comma separated; a URL is accepted only exactly as written here. Empty: no index options at all.
try:
    from runtimes.requirements import parse_allowed_index_urls

    PLANQK_ALLOWED_INDEX_URLS = parse_allowed_index_urls(os.environ.get("PLANQK_ALLOWED_INDEX_URLS", ""))
except ValueError as _exc:
    raise ImproperlyConfigured(f"PLANQK_ALLOWED_INDEX_URLS: {_exc}") from None
PLANQK_DEBIAN_MIRROR = os.environ.get("PLANQK_DEBIAN_MIRROR", "")
# bubblewrap (the default: a worker where it does not work runs nothing) or "none": user code
# without a sandbox, the operator's explicit choice (every page then tells staff what is missing).
PLANQK_SANDBOX = os.environ.get("PLANQK_SANDBOX", "bwrap")
if PLANQK_SANDBOX not in ("bwrap", "none"):
    raise ImproperlyConfigured(f"PLANQK_SANDBOX must be bwrap or none, not {PLANQK_SANDBOX!r}")
# A root worker runs each execution as a uid (and gid) of its own from this range (local and
# Docker runtimes); pick one no user or subordinate-uid range (/etc/subuid) of the host uses.
PLANQK_EXECUTION_UIDS = os.environ.get("PLANQK_EXECUTION_UIDS", "200000-265535")
# Without bubblewrap (PLANQK_SANDBOX=none, root worker) every execution also has this supplementary
# gid, which a worker grants read access (an ACL entry) to the interpreter it builds from, and
# passage through its parent folders, where other users have neither; outside the uid range.
PLANQK_EXECUTION_GROUP = int(os.environ.get("PLANQK_EXECUTION_GROUP", "199999"))
# Interpreter for local runtime environments; empty means the one running the platform.
PLANQK_LOCAL_PYTHON = os.environ.get("PLANQK_LOCAL_PYTHON", "")
# Builds install with uv (fast; the binary of the uv package) or pip (the fallback).
PLANQK_INSTALLER = os.environ.get("PLANQK_INSTALLER", "uv")
if PLANQK_INSTALLER not in ("uv", "pip"):
    raise ImproperlyConfigured(f"PLANQK_INSTALLER must be uv or pip, not {PLANQK_INSTALLER!r}")
# A build's smoke test (src.program imports; the API spec's example input runs) stops after this long.
PLANQK_BUILD_SMOKE_TIMEOUT = env_int("PLANQK_BUILD_SMOKE_TIMEOUT", 120, minimum=5)
# Local runtime environments no current build uses are removed after this many idle days.
PLANQK_ENV_IDLE_DAYS = float(os.environ.get("PLANQK_ENV_IDLE_DAYS", "14"))
PLANQK_MAX_UPLOAD_MB = env_int("PLANQK_MAX_UPLOAD_MB", 50, minimum=1)
# What an uploaded archive may unpack to: entries, total size, and compression ratio (zip bombs).
PLANQK_UPLOAD_MAX_ENTRIES = env_int("PLANQK_UPLOAD_MAX_ENTRIES", 5000, minimum=1)
PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB = env_int("PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB", 500, minimum=1)
PLANQK_UPLOAD_MAX_RATIO = env_int("PLANQK_UPLOAD_MAX_RATIO", 100, minimum=1)
# Stored build log per version (longer logs are cut with a note); a build left PENDING this long
# (its task was lost, e.g. the broker was down) is enqueued again, at most once per period.
PLANQK_BUILD_LOG_MAX_BYTES = env_int("PLANQK_BUILD_LOG_MAX_BYTES", 2 * 1024 * 1024, minimum=1)
PLANQK_BUILD_REQUEUE_SECONDS = env_int("PLANQK_BUILD_REQUEUE_SECONDS", 300, minimum=1)
PLANQK_DATAPOOL_MAX_UPLOAD_MB = env_int("PLANQK_DATAPOOL_MAX_UPLOAD_MB", 100)
PLANQK_JOB_DEFAULT_TIMEOUT = env_int("PLANQK_JOB_DEFAULT_TIMEOUT", 600)
PLANQK_JOB_DEFAULT_MEMORY_MB = env_int("PLANQK_JOB_DEFAULT_MEMORY_MB", 1024)
PLANQK_JOB_MAX_MEMORY_MB = env_int("PLANQK_JOB_MAX_MEMORY_MB", 8192)
PLANQK_JOB_DEFAULT_CPUS = float(os.environ.get("PLANQK_JOB_DEFAULT_CPUS", "1.0"))
PLANQK_JOB_MAX_CPUS = float(os.environ.get("PLANQK_JOB_MAX_CPUS", "4.0"))
PLANQK_JOB_MAX_PIDS = env_int("PLANQK_JOB_MAX_PIDS", 256)
PLANQK_JOB_LOG_MAX_BYTES = env_int("PLANQK_JOB_LOG_MAX_BYTES", 1024 * 1024, minimum=1)
PLANQK_INPUT_MAX_BYTES = env_int("PLANQK_INPUT_MAX_BYTES", 1024 * 1024, minimum=1)
# Data pool files are how larger inputs reach a service (by value is capped at 1 MB).
PLANQK_DATAREF_MAX_BYTES = env_int("PLANQK_DATAREF_MAX_BYTES", 64 * 1024 * 1024, minimum=1)
# Engine timings: a RUNNING job whose heartbeat is older than this is handed to another worker;
# a PENDING job whose task seems lost is enqueued again once, and failed after the expiry.
PLANQK_JOB_HEARTBEAT_STALE_SECONDS = env_int("PLANQK_JOB_HEARTBEAT_STALE_SECONDS", 60, minimum=1)
PLANQK_JOB_PENDING_REQUEUE_SECONDS = env_int("PLANQK_JOB_PENDING_REQUEUE_SECONDS", 120, minimum=1)
PLANQK_JOB_PENDING_EXPIRE_SECONDS = env_int("PLANQK_JOB_PENDING_EXPIRE_SECONDS", 24 * 3600, minimum=1)
# Worker hosts: each host's workers beat under this name (the host part of a job's worker id, so
# no colon); a host silent this long is lost and the reaper settles its running jobs by the rule
# in jobs.engine.job_settle_stale. Longer than a job's staleness: a lost job heartbeat alone
# means a lost worker process, which a worker restarted on the same host reattaches to.
PLANQK_HOST_NAME = os.environ.get("PLANQK_HOST_NAME", "").strip() or socket.gethostname()
from hosts.routing import HOST_NAME_RE  # noqa: E402 - the one grammar, which routing reads back

if not HOST_NAME_RE.fullmatch(PLANQK_HOST_NAME):
    raise ImproperlyConfigured(
        f"PLANQK_HOST_NAME must be 1-100 letters, digits, dots, dashes or underscores, got {PLANQK_HOST_NAME!r}"
    )
PLANQK_HOST_LOST_SECONDS = env_int(
    "PLANQK_HOST_LOST_SECONDS", max(180, 3 * PLANQK_JOB_HEARTBEAT_STALE_SECONDS), minimum=2
)
if PLANQK_HOST_LOST_SECONDS <= PLANQK_JOB_HEARTBEAT_STALE_SECONDS:
    raise ImproperlyConfigured(
        f"PLANQK_HOST_LOST_SECONDS ({PLANQK_HOST_LOST_SECONDS}) must be longer than "
        f"PLANQK_JOB_HEARTBEAT_STALE_SECONDS ({PLANQK_JOB_HEARTBEAT_STALE_SECONDS})"
    )
# What an execution may print before it is stopped: the log cap plus room for the result line.
PLANQK_JOB_OUTPUT_MAX_BYTES = env_int(
    "PLANQK_JOB_OUTPUT_MAX_BYTES", max(64 * 1024 * 1024, 4 * PLANQK_JOB_LOG_MAX_BYTES), minimum=1
)
PLANQK_JOB_MAX_INTERIM_RESULTS = env_int("PLANQK_JOB_MAX_INTERIM_RESULTS", 1000, minimum=1)
# How the engine follows a running execution: "events" (the runtime wakes it when the execution
# ended or printed, Runtime.wait) or "poll" (a clock only, as before; kept to compare the two).
PLANQK_ENGINE_WAIT = os.environ.get("PLANQK_ENGINE_WAIT", "events").strip()
if PLANQK_ENGINE_WAIT not in ("events", "poll"):
    raise ImproperlyConfigured(f"PLANQK_ENGINE_WAIT must be events or poll, not {PLANQK_ENGINE_WAIT!r}")
# Warm runners (local runtime, runtimes/local/warm.py): an execution takes a runner that already
# started in its sandbox and imported the code, used once. "on" (the default) or "off"; the tests
# run cold unless a test turns it on, so that every other test sees one execution per start.
PLANQK_WARM = os.environ.get("PLANQK_WARM", "off" if TESTING else "on").strip().lower()
if PLANQK_WARM not in ("on", "off"):
    raise ImproperlyConfigured(f"PLANQK_WARM must be on or off, not {PLANQK_WARM!r}")
# Per version (and limits) called in the last PLANQK_WARM_IDLE_SECONDS: at least MIN and at most
# MAX idle runners, as many as calls in the last 10 s; all idle runners of a host within MEMORY_MB.
PLANQK_WARM_MIN_RUNNERS = env_int("PLANQK_WARM_MIN_RUNNERS", 1, minimum=0)
PLANQK_WARM_MAX_RUNNERS = env_int("PLANQK_WARM_MAX_RUNNERS", 2, minimum=0)
if PLANQK_WARM_MAX_RUNNERS < PLANQK_WARM_MIN_RUNNERS:
    raise ImproperlyConfigured(
        f"PLANQK_WARM_MAX_RUNNERS ({PLANQK_WARM_MAX_RUNNERS}) is below "
        f"PLANQK_WARM_MIN_RUNNERS ({PLANQK_WARM_MIN_RUNNERS})"
    )
PLANQK_WARM_IDLE_SECONDS = env_int("PLANQK_WARM_IDLE_SECONDS", 600, minimum=1)
PLANQK_WARM_MEMORY_MB = env_int("PLANQK_WARM_MEMORY_MB", 1024, minimum=0)
# Result files: what a program leaves in its output directory (OUTPUT_DIRECTORY) is kept with the
# job up to these caps (count, per file, all together); what is over a cap is refused with a note.
PLANQK_JOB_RESULT_FILES_MAX = env_int("PLANQK_JOB_RESULT_FILES_MAX", 100, minimum=0)
PLANQK_JOB_RESULT_FILE_MAX_MB = env_int("PLANQK_JOB_RESULT_FILE_MAX_MB", 50, minimum=0)
PLANQK_JOB_RESULT_FILES_TOTAL_MB = env_int("PLANQK_JOB_RESULT_FILES_TOTAL_MB", 200, minimum=0)
# The owner quota: a provider running their own service without an application (Jobs page,
# REST API, planqk run) has these limits instead of a plan's (0: no limit).
PLANQK_OWNER_REQUESTS_PER_MINUTE = env_int("PLANQK_OWNER_REQUESTS_PER_MINUTE", 120, minimum=0)
PLANQK_OWNER_MAX_CONCURRENT = env_int("PLANQK_OWNER_MAX_CONCURRENT", 10, minimum=0)

# --- Gateway ----------------------------------------------------------------------------------
# Empty means "http(s)://<host of the request>/gateway".
PLANQK_GATEWAY_URL = os.environ.get("PLANQK_GATEWAY_URL", "").rstrip("/")
# Services imported from a URL are reached only on public addresses unless this is set
# (e.g. for a provider service inside the same private network as the platform).
PLANQK_EXTERNAL_ALLOW_PRIVATE = env_bool("PLANQK_EXTERNAL_ALLOW_PRIVATE", False)

# --- Payments ---------------------------------------------------------------------------------
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")  # a local fake in tests
PLANQK_PAYMENT_GATEWAY = os.environ.get("PLANQK_PAYMENT_GATEWAY", "stripe" if STRIPE_SECRET_KEY else "simulator")
PLANQK_CURRENCY = os.environ.get("PLANQK_CURRENCY", "eur")

# --- Security (production) --------------------------------------------------------------------
if not DEBUG and not TESTING:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    if not SECURE_SSL_REDIRECT and os.environ.get("PLANQK_WEB_HOST", "") in {"127.0.0.1", "::1", "localhost"}:
        # `make run` serves plain HTTP on loopback only: there is no network to protect and no
        # TLS to redirect to. Browsers keep Secure cookies for loopback origins, so the rest holds.
        SILENCED_SYSTEM_CHECKS = ["security.W008"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 30)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp) on every answer: scripts, styles, connections and frames
# from the portal itself only, no inline code, no plugins. The card page adds what Stripe.js
# needs (payments/views.py); a gateway on another origin (PLANQK_GATEWAY_URL) is allowed as a
# connection so Swagger UI's "Try it out" reaches it.
_CSP_CONNECT = ["'self'"]
if PLANQK_GATEWAY_URL:
    _gateway = urlsplit(PLANQK_GATEWAY_URL)
    _CSP_CONNECT.append(f"{_gateway.scheme}://{_gateway.netloc}")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": _CSP_CONNECT,
        "frame-src": ["'self'"],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
