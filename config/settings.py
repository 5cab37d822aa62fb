"""Settings for Aegis Studio, read from the environment.

With no environment at all the app runs embedded: SQLite under ``var/`` and Celery tasks
run in-process. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and real workers.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AEGIS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


def local_secret_key() -> str:
    """A development key made once and kept in ``var/secret_key``."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = local_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "taxonomy",
    "annotation",
    "jury",
    "training",
    "evaluation",
    "moderation",
    "frontend",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'aegis.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,  # a connection the server dropped is replaced, not answered with a 500
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel apart from the SQL, and psycopg prepares a statement run 5 times on a
    # connection (Django turns that off unless told), so PostgreSQL stops planning it again: planning
    # was most of the database's work on the labelling path (1-1.4 ms per statement against
    # 0.05-0.2 ms of execution). DB_PREPARE_THRESHOLD= (empty) turns it off, for a pooler in
    # transaction mode that cannot keep prepared statements.
    prepare_threshold = os.environ.get("DB_PREPARE_THRESHOLD", "5").strip()
    if prepare_threshold and not prepare_threshold.isdigit():
        raise ImproperlyConfigured(f"DB_PREPARE_THRESHOLD={prepare_threshold!r}: expected a whole number, or empty")
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": int(prepare_threshold) if prepare_threshold else None,
    }
    # Django's backend, with a health check of each request's connection that needs no round trip.
    DATABASES["default"]["ENGINE"] = "core.postgresql"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Connections persist like PostgreSQL's (DB_CONN_MAX_AGE): a fresh one per request re-ran the
    # PRAGMAs and lost SQLite's page cache, most of a labelling request's CPU (README "Benchmarks").
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
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

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
# Uploads above this size stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "core.login_throttle.ThrottledBasicAuthentication",
        "core.token_auth.OneStatementTokenAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.api_schema.ApiSchema",  # documents the error answers too
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    # Online moderation: requests per account to POST /api/moderation/{slug}/ (README "Online moderation").
    "DEFAULT_THROTTLE_RATES": {"moderation": os.environ.get("AEGIS_MODERATION_RATE", "600/min")},
    # Redis down: 503 with a message (core.api_errors), never a 500 (a job start still answers 202).
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Aegis Studio API",
    "DESCRIPTION": "Content-safety annotation, jury, training and evaluation.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # What the URL converters match: an id never negative, a slug of letters, digits, - and _ (else no route: 404).
    "PATH_CONVERTER_OVERRIDES": {
        "int": {"type": "integer", "minimum": 0},
        "slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
    },
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "core.models.JobStatus",
        "GenerationKindEnum": "jury.models.GenerationKind",
        "TrainerKindEnum": "training.models.TrainerKind",
        "SafetyLabelEnum": "annotation.labels.SafetyLabel",
        "LabelSourceEnum": "annotation.labels.LabelSource",
    },
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Celery: in-process unless a Redis URL is given or AEGIS_EMBEDDED_BROKER is on (scripts/demo): then
# tasks go through kombu's SQLAlchemy transport on a SQLite file under var/, which needs no server,
# to a worker started beside the web server. Model work goes to the "gpu" queue.
REDIS_URL = os.environ.get("REDIS_URL", "")
AEGIS_EMBEDDED_BROKER = env_bool("AEGIS_EMBEDDED_BROKER", False) and not REDIS_URL
EMBEDDED_BROKER_URL = f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
# Each worker of the embedded broker touches a file here every AEGIS_WORKER_BEAT_SECONDS (the
# SQLAlchemy transport has no broadcast, so a ping cannot reach it); see core.worker_presence.
AEGIS_WORKER_BEAT_DIR = VAR_DIR / "workers"
AEGIS_WORKER_BEAT_SECONDS = float(os.environ.get("AEGIS_WORKER_BEAT_SECONDS", 5))
CELERY_BROKER_URL = REDIS_URL or (EMBEDDED_BROKER_URL if AEGIS_EMBEDDED_BROKER else "memory://")
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or AEGIS_EMBEDDED_BROKER)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# acks_late tasks are redelivered when a worker dies; Redis also redelivers a task still running
# after the visibility timeout, so it must outlast the longest training run (12 h by default).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("AEGIS_TASK_VISIBILITY_TIMEOUT", 43200))}
if AEGIS_EMBEDDED_BROKER:  # the SQLAlchemy transport hands its options to create_engine
    CELERY_BROKER_TRANSPORT_OPTIONS = {"connect_args": {"timeout": 30}}
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True

# Job supervision (README "When something fails"): a worker writes each running job's heartbeat every
# AEGIS_JOB_HEARTBEAT_SECONDS; celery beat runs the supervisor every AEGIS_SUPERVISE_SECONDS on the
# "supervise" queue; a heartbeat older than AEGIS_JOB_STALE_SECONDS means the worker is gone and the
# job is queued again (at most AEGIS_JOB_MAX_ATTEMPTS attempts); a pending job no worker took within
# AEGIS_JOB_DISPATCH_WINDOW seconds is sent again.
AEGIS_JOB_HEARTBEAT_SECONDS = float(os.environ.get("AEGIS_JOB_HEARTBEAT_SECONDS", 10))
AEGIS_JOB_STALE_SECONDS = float(os.environ.get("AEGIS_JOB_STALE_SECONDS", 60))
AEGIS_JOB_MAX_ATTEMPTS = int(os.environ.get("AEGIS_JOB_MAX_ATTEMPTS", 3))
AEGIS_JOB_DISPATCH_WINDOW = float(os.environ.get("AEGIS_JOB_DISPATCH_WINDOW", 300))
AEGIS_SUPERVISE_SECONDS = float(os.environ.get("AEGIS_SUPERVISE_SECONDS", 30))
CELERY_TASK_ROUTES = {"core.supervise_jobs": {"queue": "supervise"}}
CELERY_BEAT_SCHEDULE = {
    "supervise-jobs": {
        "task": "core.supervise_jobs",
        "schedule": AEGIS_SUPERVISE_SECONDS,
        "options": {"expires": AEGIS_SUPERVISE_SECONDS},
    }
}

# Public data sets used by the demo, tests and benchmarks (never copied into the repo).
AEGIS_SHARED_DATA = Path(os.environ.get("AEGIS_SHARED_DATA", BASE_DIR.parent / "shared" / "data"))

# How long an annotator holds an item before it returns to the queue.
AEGIS_LEASE_MINUTES = int(os.environ.get("AEGIS_LEASE_MINUTES", 30))
# A jury job stops when a juror's server fails this many requests in a row (refused, timed out, 5xx).
AEGIS_JURY_MAX_UNREACHABLE = int(os.environ.get("AEGIS_JURY_MAX_UNREACHABLE", 16))

# Online moderation (README "Online moderation"): longest prompt or response in characters, guard
# runners kept loaded per process, experts asked at once. Rate limits are counted in the "throttle"
# cache, shared by every process through Redis when REDIS_URL is set.
AEGIS_MODERATION_MAX_CHARS = int(os.environ.get("AEGIS_MODERATION_MAX_CHARS", 100_000))
AEGIS_MODERATION_RUNNERS = int(os.environ.get("AEGIS_MODERATION_RUNNERS", 16))
AEGIS_MODERATION_PARALLEL = env_bool("AEGIS_MODERATION_PARALLEL", True)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "throttle"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
    ),
}

# In-process guards (jury transformers backend): "one_pass" reads the labels in one forward pass,
# "generate" decodes whole answers (see README "Evaluation").
AEGIS_JURY_SCORING = os.environ.get("AEGIS_JURY_SCORING", "one_pass")

# Import limits (see README "Importing samples").
AEGIS_IMPORT_MAX_FIELD_BYTES = int(os.environ.get("AEGIS_IMPORT_MAX_FIELD_BYTES", 1024 * 1024))
AEGIS_IMPORT_BATCH_SIZE = int(os.environ.get("AEGIS_IMPORT_BATCH_SIZE", 2000))

# Login throttling (README "Login throttling"): django-axes counts failed passwords per account and
# client address on the login form, the admin, Basic auth and the token endpoint, in the shared
# "throttle" cache; a locked-out client gets HTTP 429 until the cool-off ends.
AUTHENTICATION_BACKENDS = ["core.login_throttle.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("AEGIS_LOGIN_THROTTLE", True)
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CACHE = "throttle"
AXES_FAILURE_LIMIT = int(os.environ.get("AEGIS_LOGIN_FAILURE_LIMIT", 10))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("AEGIS_LOGIN_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Without Redis the app runs as one process, so the in-memory "throttle" cache sees every attempt.
SILENCED_SYSTEM_CHECKS = [] if REDIS_URL else ["axes.W001"]

# Content-Security-Policy (README "Content-Security-Policy", django-csp): scripts, styles, images
# and fonts from this site only; no inline script or style, no plugins, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Outbound calls and server paths (README "Outbound addresses and server paths"): the hosts model
# endpoints may be on (names, .domain suffixes, networks; link-local and metadata addresses are
# refused always), and the folders staff may name in the web app.
AEGIS_ENDPOINT_ALLOWED_HOSTS = env_list(
    "AEGIS_ENDPOINT_ALLOWED_HOSTS",
    ["localhost", "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
AEGIS_SERVER_PATH_ROOTS = env_list(
    "AEGIS_SERVER_PATH_ROOTS", [str(AEGIS_SHARED_DATA), str(MEDIA_ROOT), str(VAR_DIR / "models")]
)
# Checked while a file streams in (README "Import limits"): decompressed bytes, in all and as a
# ratio to a gzipped upload; one line (or quoted CSV record); a whole JSON-array document; records;
# blank lines; JSON nesting.
AEGIS_IMPORT_MAX_BYTES = int(os.environ.get("AEGIS_IMPORT_MAX_BYTES", 4 * 1024**3))
AEGIS_IMPORT_MAX_RATIO = float(os.environ.get("AEGIS_IMPORT_MAX_RATIO", 100))
AEGIS_IMPORT_MAX_LINE_BYTES = int(os.environ.get("AEGIS_IMPORT_MAX_LINE_BYTES", 16 * 1024 * 1024))
AEGIS_IMPORT_MAX_DOCUMENT_BYTES = int(os.environ.get("AEGIS_IMPORT_MAX_DOCUMENT_BYTES", 256 * 1024 * 1024))
AEGIS_IMPORT_MAX_ROWS = int(os.environ.get("AEGIS_IMPORT_MAX_ROWS", 10_000_000))
AEGIS_IMPORT_MAX_BLANK_LINES = int(os.environ.get("AEGIS_IMPORT_MAX_BLANK_LINES", 100_000))
AEGIS_IMPORT_MAX_JSON_DEPTH = int(os.environ.get("AEGIS_IMPORT_MAX_JSON_DEPTH", 32))

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
