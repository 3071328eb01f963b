"""Settings for every process, driven by environment variables.

One module serves both worlds. With nothing set you get the embedded default
(SQLite, in-memory channel layer, tasks run in-process, console e-mail) so the
portal runs on a bare laptop; setting ``DATABASE_URL``, ``REDIS_URL`` and
``KAFKA_BOOTSTRAP_SERVERS`` switches to the real services with the same code
paths. ``PORTAL_ENV=production`` turns on the safety checks and JSON logs.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

PORTAL_ENV = env_str("PORTAL_ENV", "development")
PRODUCTION = PORTAL_ENV == "production"

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused in production below
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", default=not PRODUCTION)

if PRODUCTION:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "PORTAL_ENV=production needs SECRET_KEY set to a random value of 32+ characters; "
            "the development key is refused."
        )
    if DEBUG:
        raise ImproperlyConfigured("PORTAL_ENV=production refuses DEBUG=True.")

# Fernet keys for secrets stored encrypted (backend credentials); newest first.
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS", [])
if PRODUCTION and not ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "PORTAL_ENV=production needs ENCRYPTION_KEYS (one or more Fernet keys, comma-separated)."
    )
# HMAC key for API key hashes; empty derives one from SECRET_KEY (HKDF, like crypto.py).
API_KEY_HMAC_SECRET = env_str("API_KEY_HMAC_SECRET", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "apps.core",
    "apps.accounts",
    "apps.teams",
    "apps.assistants",
    "apps.prompts",
    "apps.inference",
    "apps.conversations",
    "apps.keys",
    "apps.gateway",
    "apps.usage",
    "apps.quotas",
    "apps.events",
    "apps.dashboard",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.SecurityMiddleware",
    "apps.core.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.core.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "apps.core.middleware.XFrameOptionsMiddleware",
]
# /v1 (the OpenAI-compatible gateway: a bearer key, JSON in and out, no session,
# cookie or page) is served by its own handler with only this (portal/asgi.py).
GATEWAY_MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.SecurityMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"

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
                "apps.teams.context_processors.current_team",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL:
    (BASE_DIR / "var").mkdir(exist_ok=True)
try:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)
        if DATABASE_URL
        else {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "var" / "portal.sqlite3")),
            # The embedded default runs several runs at once in threads of one process.
            # SQLite allows one writer: WAL lets readers go on beside it, IMMEDIATE
            # transactions take the write lock at BEGIN (a deferred one that reads and
            # then writes fails at once with "database is locked" instead of waiting),
            # and the timeout is how long a writer waits for its turn.
            "OPTIONS": {
                "timeout": env_int("SQLITE_TIMEOUT_SECONDS", 30),
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
except (ValueError, dj_database_url.UnknownSchemeError) as error:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL (postgres://user@host:5432/db): {error}"
    ) from None
# PostgreSQL connections come from a pool per process, bounded so that web and worker
# processes together stay under the server's max_connections: a burst waits for a
# free connection instead of failing with "too many clients".
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env_bool(
    "DATABASE_POOL", default=True
):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 20),
        "timeout": env_int("DATABASE_POOL_TIMEOUT_SECONDS", 30),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "portal"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 times sockets out after 5 s, the same as the layer's
                # blocking read: an idle WebSocket would then crash and drop. Give the
                # socket more time than the read (channels_redis#422).
                "hosts": [
                    {"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}
                ],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "asgi"),
                # Every channel a process opens with new_channel() (WebSockets, run
                # streams) shares one Redis inbox, and group_send silently drops
                # messages once it holds `capacity` of them. The default 100 lost
                # run.done under 50 concurrent streams (bench/gateway.py).
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 10_000),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

KAFKA_BOOTSTRAP_SERVERS = env_list("KAFKA_BOOTSTRAP_SERVERS", [])
KAFKA_EVENTS_TOPIC = env_str("KAFKA_EVENTS_TOPIC", "portal.events")
# Messages the bridge can't deliver (not our envelope, unknown type, wrong team).
KAFKA_EVENTS_DLQ_TOPIC = env_str("KAFKA_EVENTS_DLQ_TOPIC", f"{KAFKA_EVENTS_TOPIC}.dlq")
KAFKA_EVENTS_PARTITIONS = env_int("KAFKA_EVENTS_PARTITIONS", 6)
KAFKA_BRIDGE_GROUP = env_str("KAFKA_BRIDGE_GROUP", "portal-bridge")
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 10_000)
KAFKA_HEARTBEAT_INTERVAL_MS = env_int("KAFKA_HEARTBEAT_INTERVAL_MS", 3_000)

# Managed clusters want TLS and/or SASL. apps.events.kafka.connection_options() hands
# these to every client; a mistake here fails at start-up, not at the first publish.
# The password only ever goes to the client: never into a message, a log or the ConfigMap.
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
KAFKA_SECURITY_PROTOCOL = env_str("KAFKA_SECURITY_PROTOCOL", "").strip().upper() or "PLAINTEXT"
KAFKA_SASL_MECHANISM = env_str("KAFKA_SASL_MECHANISM", "").strip().upper()
KAFKA_SASL_USERNAME = env_str("KAFKA_SASL_USERNAME", "")
KAFKA_SASL_PASSWORD = env_str("KAFKA_SASL_PASSWORD", "")
KAFKA_SSL_CAFILE = env_str("KAFKA_SSL_CAFILE", "").strip()
KAFKA_SSL_CERTFILE = env_str("KAFKA_SSL_CERTFILE", "").strip()
KAFKA_SSL_KEYFILE = env_str("KAFKA_SSL_KEYFILE", "").strip()


def _check_kafka_security() -> str:
    """Refuse a security configuration the clients would only fail on later; returns
    the SASL mechanism to use (PLAIN when SASL is on and none is named)."""
    protocol, mechanism = KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ImproperlyConfigured(
            f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}, "
            f"got {protocol!r}."
        )
    if mechanism and mechanism not in KAFKA_SASL_MECHANISMS:
        raise ImproperlyConfigured(
            f"KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_SASL_MECHANISMS)}, "
            f"got {mechanism!r}."
        )
    sasl = protocol.startswith("SASL_")
    if sasl and not (KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD):
        missing = [
            name
            for name, value in (
                ("KAFKA_SASL_USERNAME", KAFKA_SASL_USERNAME),
                ("KAFKA_SASL_PASSWORD", KAFKA_SASL_PASSWORD),
            )
            if not value
        ]
        raise ImproperlyConfigured(
            f"KAFKA_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)} "
            "(the SASL credentials)."
        )
    if not sasl and (mechanism or KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD):
        raise ImproperlyConfigured(
            f"KAFKA_SASL_* is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL; "
            "set it to SASL_SSL (or SASL_PLAINTEXT)."
        )
    files = {
        "KAFKA_SSL_CAFILE": KAFKA_SSL_CAFILE,
        "KAFKA_SSL_CERTFILE": KAFKA_SSL_CERTFILE,
        "KAFKA_SSL_KEYFILE": KAFKA_SSL_KEYFILE,
    }
    named = {name: path for name, path in files.items() if path}
    if named and protocol not in {"SSL", "SASL_SSL"}:
        raise ImproperlyConfigured(
            f"{', '.join(named)} set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS; "
            "set it to SSL or SASL_SSL."
        )
    if KAFKA_SSL_KEYFILE and not KAFKA_SSL_CERTFILE:
        raise ImproperlyConfigured("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE (the client cert).")
    for name, path in named.items():
        if not Path(path).is_file():
            raise ImproperlyConfigured(f"{name} names {path!r}, but there is no file there.")
    return (mechanism or "PLAIN") if sasl else ""


KAFKA_SASL_MECHANISM = _check_kafka_security()

# --- Events ------------------------------------------------------------------

# Published outbox rows (the event log the pages and the API read) live this long.
EVENTS_RETENTION_DAYS = env_int("EVENTS_RETENTION_DAYS", 30)
EVENTS_RETENTION_BATCH_SIZE = env_int("EVENTS_RETENTION_BATCH_SIZE", 5000)
# The relay waits this long for a NOTIFY before looking at the outbox anyway.
EVENTS_RELAY_POLL_SECONDS = float(env_str("EVENTS_RELAY_POLL_SECONDS", "1.0"))
EVENTS_RELAY_BATCH_SIZE = env_int("EVENTS_RELAY_BATCH_SIZE", 1000)
EVENTS_RELAY_MAX_BACKOFF_SECONDS = float(env_str("EVENTS_RELAY_MAX_BACKOFF_SECONDS", "30"))
# Beat publishes rows older than this when no relay holds the relay lock.
EVENTS_SAFETY_NET_SECONDS = env_int("EVENTS_SAFETY_NET_SECONDS", 60)
# Without Kafka, each process hands its committed rows to the channel layer from one
# thread, waiting this long after a row for the ones that follow, so a busy gateway
# (three events per call) sends and stamps them in batches.
EVENTS_DIRECT_LINGER_MS = env_int("EVENTS_DIRECT_LINGER_MS", 25)
# How long the bridge remembers an event id it delivered (duplicates are skipped).
EVENTS_DEDUPE_SECONDS = env_int("EVENTS_DEDUPE_SECONDS", 86_400)
# Check every event against its JSON Schema as it is emitted, failing the caller's
# transaction when one doesn't match (a bug). On in development and in tests; in
# production the bridge checks each one anyway and dead-letters what fails, and
# the check costs ~120 us per event on the write path.
EVENTS_CHECK_ON_EMIT = env_bool("EVENTS_CHECK_ON_EMIT", default=DEBUG)

# --- Celery ----------------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Without a broker the embedded default runs tasks in-process, same code path.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
# kombu's Redis transport emulates acknowledgements by writing every delivered message
# to an "unacked" hash and deleting it on ack: two pipelined round trips and about a
# fifth of a worker's CPU per run (bench: 1.5 to 2 ms of 8). Runs don't need it: the run's
# row is the record, and the sweeper re-sends a queued run whose message was lost after
# INFERENCE_QUEUED_RESEND_SECONDS and re-queues a running one whose heartbeat stopped, as
# it did before, because a restored message only came back after the visibility timeout
# (600 s). A warm shutdown still puts prefetched messages back. What a hard-killed worker
# loses for good is the one default-queue task it was running (a model-list refresh, an
# invitation e-mail); CELERY_ACK_EMULATION=true trades the CPU back for those.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
    "ack_emulation": env_bool("CELERY_ACK_EMULATION", default=False),
}
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-runs": {"task": "apps.inference.tasks.sweep_stale_runs", "schedule": 30.0},
    "reconcile-quotas": {
        "task": "apps.quotas.tasks.reconcile_quotas",
        "schedule": float(env_int("QUOTA_RECONCILE_SECONDS", 60)),
    },
    "purge-usage-records": {"task": "apps.usage.tasks.purge_usage_records", "schedule": 3600.0},
    # Rollups are folded from the ledger in batches, not written per run (reads add
    # the unfolded tail, so they stay exact).
    "fold-usage-rollups": {
        "task": "apps.usage.tasks.fold_usage_rollups",
        "schedule": float(env_str("USAGE_FOLD_SECONDS", "2")),
    },
    "events-safety-net": {"task": "apps.events.tasks.events_safety_net", "schedule": 30.0},
}
CELERY_ACCEPT_CONTENT = ["json"]

# --- Inference ---------------------------------------------------------------

# A running run whose worker has not sent a heartbeat for this long is re-queued
# (or failed after INFERENCE_MAX_DELIVERIES deliveries) by the sweeper.
INFERENCE_STALE_SECONDS = env_int("INFERENCE_STALE_SECONDS", 60)
INFERENCE_MAX_DELIVERIES = env_int("INFERENCE_MAX_DELIVERIES", 3)
# A queued run whose message was handed to the broker this long ago is sent again.
INFERENCE_QUEUED_RESEND_SECONDS = env_int("INFERENCE_QUEUED_RESEND_SECONDS", 300)
INFERENCE_HEARTBEAT_SECONDS = env_int("INFERENCE_HEARTBEAT_SECONDS", 5)
INFERENCE_RETRY_BASE_SECONDS = float(env_str("INFERENCE_RETRY_BASE_SECONDS", "0.5"))
INFERENCE_RETRY_MAX_SECONDS = float(env_str("INFERENCE_RETRY_MAX_SECONDS", "20"))
# Deltas of one run are coalesced into at most one feed message per interval.
INFERENCE_RELAY_INTERVAL_MS = env_int("INFERENCE_RELAY_INTERVAL_MS", 50)
LOCAL_BACKEND_TOKENS_PER_SECOND = float(env_str("LOCAL_BACKEND_TOKENS_PER_SECOND", "40"))

# --- Usage -------------------------------------------------------------------

# Ledger rows (one per backend attempt) older than this are deleted by beat, a batch
# per statement; the hourly and daily rollups the pages read are kept.
USAGE_RETENTION_DAYS = env_int("USAGE_RETENTION_DAYS", 400)
USAGE_RETENTION_BATCH_SIZE = env_int("USAGE_RETENTION_BATCH_SIZE", 5000)

# --- Quotas ------------------------------------------------------------------

QUOTA_REDIS_PREFIX = env_str("QUOTA_REDIS_PREFIX", "quota")
# Completion tokens reserved for a run that sets no max_tokens.
QUOTA_DEFAULT_MAX_TOKENS = env_int("QUOTA_DEFAULT_MAX_TOKENS", 4096)
# How long a process reuses the quotas it read; changes elsewhere apply after this.
QUOTA_RULES_CACHE_SECONDS = env_int("QUOTA_RULES_CACHE_SECONDS", 2)
QUOTA_RESERVATION_TTL_SECONDS = env_int("QUOTA_RESERVATION_TTL_SECONDS", 86400)
# A reservation stops counting as a concurrent run after this unless reconciliation
# finds its run still going (a leaked slot can't block a team for long).
QUOTA_RUN_DEADLINE_SECONDS = env_int("QUOTA_RUN_DEADLINE_SECONDS", 3600)
QUOTA_RECONCILE_SECONDS = env_int("QUOTA_RECONCILE_SECONDS", 60)
QUOTA_RECONCILE_GRACE_SECONDS = env_int("QUOTA_RECONCILE_GRACE_SECONDS", 60)
# Budget counters outlive their period by this much (late settlements, the page).
QUOTA_PERIOD_KEEP_SECONDS = env_int("QUOTA_PERIOD_KEEP_SECONDS", 2 * 86400)

# --- Auth ------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_THROTTLE_MAX_FAILURES = env_int("LOGIN_THROTTLE_MAX_FAILURES", 5)
LOGIN_THROTTLE_WINDOW_SECONDS = env_int("LOGIN_THROTTLE_WINDOW_SECONDS", 900)
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)

# Sessions are read from the cache (Redis when configured) and written through to the
# database: one query fewer on every authenticated request and WebSocket connect.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Session and CSRF cookies only over https: on in production. SECURE_COOKIES=false is
# for production mode served over plain http on a private host (Compose on localhost),
# where a browser would never send a Secure cookie back.
SECURE_COOKIES = env_bool("SECURE_COOKIES", default=PRODUCTION)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Bodies above this are refused with 413 before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 1_048_576)

# --- E-mail ----------------------------------------------------------------

_MAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
_MAIL_OPTIONS: dict[str, object] = {}
if _MAIL_BACKEND.endswith("smtp.EmailBackend"):
    _MAIL_OPTIONS = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25),
        "username": env_str("EMAIL_HOST_USER", ""),
        "password": env_str("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", default=False),
    }
elif _MAIL_BACKEND.endswith("filebased.EmailBackend"):
    _MAIL_OPTIONS = {"file_path": env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))}
MAILERS = {"default": {"BACKEND": _MAIL_BACKEND, "OPTIONS": _MAIL_OPTIONS}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")

# --- Static files, i18n ----------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is absent

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging ---------------------------------------------------------------

LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "text")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "apps.core.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "kafka": {"level": "WARNING"},
        # One line per model call is ours ("run executed", with the run id and its
        # outcome); the HTTP client's line per backend request said it again. Its
        # warnings and errors still show.
        "httpx2": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --- Demo seed -------------------------------------------------------------

DEMO_EMAIL = env_str("DEMO_EMAIL", "demo@example.com")
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "demo-portal-pass")
