"""Settings for the recyclables market, configured by environment variables.

Zero configuration (``make run``): SQLite in ``var/``, in-memory channel layer, local-memory cache
and a SQLite-file Celery broker, all served by one ``manage.py serve`` process.
With ``DATABASE_URL`` and ``REDIS_URL`` set: PostgreSQL, the Redis channel layer, Redis cache and
Redis Celery broker, with ``celery worker`` and ``celery beat`` as separate processes.
See README.md for the full list of variables.
"""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MARKET_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or list(default or [])


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (production mode). "
            "Set DEBUG=1 for local development, or give a long random SECRET_KEY."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must be set when DEBUG is off (production mode), e.g. ALLOWED_HOSTS=market.example.cn"
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "channels",
    "market.core",
    "market.accounts",
    "listings",
    "pricing",
    "market.trading",
    "market.deals",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "market.core.security.SecurityHeadersMiddleware",
    # Where the URL resolver would be, for POST /api/v1/lots/{id}/bids/ with an API token.
    "market.trading.gateway.BidGatewayMiddleware",
    "market.accounts.middleware.ActingOrganisationMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "market.urls"
WSGI_APPLICATION = "market.wsgi.application"
ASGI_APPLICATION = "market.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "market.accounts.context_processors.acting_organisation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    # An empty DATABASE_URL counts as unset (dj-database-url would return an empty config).
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{VAR_DIR / 'market.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}


def postgresql_options(database: dict) -> None:
    """Connection options of a PostgreSQL database (the primary, and the replica below)."""
    if database["ENGINE"] != "django.db.backends.postgresql":
        return
    # Django's backend, with a health check that sends no query to a connection with nothing pending
    # (market/core/postgresql/base.py).
    database["ENGINE"] = "market.core.postgresql"
    # A database host that stops answering (rather than refusing) fails a connection in seconds.
    database.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT_S", 5)
    # Parameters bound on the server, and a statement run twice on a connection prepared (psycopg):
    # Django otherwise inlines the values, and PostgreSQL parses and plans every statement again,
    # which cost more than running most of the bid path's statements. Not for PgBouncer in
    # transaction mode (prepared statements live on one server connection): set 0 there. A statement
    # bound on the server takes at most 65,535 parameters: bulk writes go in batches.
    if env_int("DB_PREPARE_THRESHOLD", 2) > 0:
        database["OPTIONS"].update(
            server_side_binding=True, prepare_threshold=env_int("DB_PREPARE_THRESHOLD", 2)
        )


postgresql_options(DATABASES["default"])
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Embedded default: WAL lets readers run beside the writer; IMMEDIATE makes a writing
    # transaction take the lock at BEGIN so concurrent writers queue instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A PostgreSQL read replica (streaming replication) for the dashboards, the statistics explorer and
# the open data: their reads of rollups and indices go there (market/core/db_router.py); every
# write, and every other read, stays on the primary. Unset: everything reads from "default".
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "").strip()
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # tests read the primary's test database
    postgresql_options(DATABASES["replica"])
DATABASE_REPLICA_ALIAS = "replica" if DATABASE_REPLICA_URL else ""
DATABASE_ROUTERS = ["market.core.db_router.ReplicaRouter"]

# --- Redis: channel layer, cache, Celery broker ----------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_PREFIX = os.environ.get("REDIS_PREFIX", "market")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, which breaks the layer's
            # blocking receive (BZPOPMIN): every idle socket was torn down every 5 s
            # (django/channels_redis#422). Blocking reads wait; connecting still times out.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "socket_connect_timeout": 5}],
                "prefix": f"{REDIS_PREFIX}:asgi",
                "capacity": 1000,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "market.core.cache.RedisCache",  # one Redis client per server, not one per call
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "global_keyprefix": f"{REDIS_PREFIX}:celery:",
        # A task taken by a worker that died unacknowledged goes back to the queue after this long
        # (late acks): longer than the longest task, or a slow task would run twice. Workers look
        # for such tasks every few seconds (kombu's default look is every 100 s).
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 3600),
        "unacked_restore_interval": max(1, min(10, env_int("CELERY_VISIBILITY_TIMEOUT_S", 3600) // 2)),
        "unacked_restore_throttle": 1,
    }
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_PREFIX}:celery:"}
    EMBEDDED_SERVICES = False
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
    CELERY_RESULT_BACKEND = None
    EMBEDDED_SERVICES = True

CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Queues by kind, so a flood of one kind (index ticks after a burst of settlements, e-mails) never
# delays another (closing auctions on time). A worker started without -Q consumes every queue below
# (`make run`, the tests); in production each kind has its own workers (README "Scale-out", Procfile).
# Every task of the project is routed explicitly: tests/scaleout/test_celery_queues.py fails on a
# task missing here.
CELERY_QUEUE_NAMES = ("closing", "notifications", "indexing", "statistics", "default")
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in CELERY_QUEUE_NAMES]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    name: {"queue": queue}
    for queue, names in {
        "closing": [
            "market.trading.tasks.sale_close_task",
            "market.trading.tasks.sales_close_sweep",
            "market.deals.tasks.deals_sweep",
            "listings.tasks.lots_expire_sweep",
        ],
        "notifications": [
            "market.core.tasks.notifications_email",
            "market.core.tasks.email_send",
            "market.accounts.tasks.invitation_email_send",
            "market.accounts.tasks.licences_expiry_sweep",
            "listings.tasks.saved_searches_alert",
        ],
        "indexing": [
            "listings.tasks.lot_index",
            "listings.search.tasks.lots_index",
            "listings.search.tasks.lots_reconcile",
        ],
        "statistics": [
            "pricing.tasks.stats_facts_changed",
            "pricing.tasks.stats_fact_apply",
            "pricing.tasks.stats_sweep",
            "pricing.index_tasks.indices_close_task",
            "pricing.index_tasks.index_tick_task",
        ],
        "default": [  # payments and credit, and the demo's simulator
            "market.deals.tasks.stripe_event_process",
            "market.deals.tasks.refund_execute",
            "market.deals.tasks.credit_refresh_task",
            "frontend.tasks.demo_simulator_tick",
        ],
    }.items()
    for name in names
}
# How often beat sends the notices' e-mail outbox (market.core.notify).
NOTIFY_EMAIL_DELAY_S = env_int("NOTIFY_EMAIL_DELAY_S", 5)
CELERY_BEAT_SCHEDULE = {
    "licences-expiry-sweep": {
        "task": "market.accounts.tasks.licences_expiry_sweep",
        "schedule": timedelta(hours=1),
    },
    "lots-expire-sweep": {
        "task": "listings.tasks.lots_expire_sweep",
        "schedule": timedelta(minutes=30),
    },
    "notifications-email": {  # the notices' e-mail outbox (market.core.notify)
        "task": "market.core.tasks.notifications_email",
        "schedule": timedelta(seconds=NOTIFY_EMAIL_DELAY_S),
        # Sweeps queued while no worker runs expire: any later one sends everything pending.
        "options": {"expires": NOTIFY_EMAIL_DELAY_S},
    },
    "sales-close-sweep": {
        "task": "market.trading.tasks.sales_close_sweep",
        "schedule": timedelta(seconds=env_int("TRADING_SWEEP_S", 30)),
    },
    "indices-daily-close": {
        "task": "pricing.index_tasks.indices_close_task",
        # A few minutes after the cut-off (16:30 Asia/Shanghai), Monday to Friday.
        "schedule": crontab(hour=16, minute=35, day_of_week="mon-fri"),
    },
    "deals-deadlines-sweep": {
        "task": "market.deals.tasks.deals_sweep",
        "schedule": timedelta(minutes=5),
    },
    "lots-search-reconcile": {
        "task": "listings.search.tasks.lots_reconcile",
        "schedule": timedelta(minutes=15),
    },
    "stats-rollups-sweep": {
        "task": "pricing.tasks.stats_sweep",
        "schedule": timedelta(minutes=env_int("STATS_SWEEP_MINUTES", 1)),
    },
}
# The living demo (frontend/simulator.py): simulated enterprises list lots, bid and settle deals
# through the services. On by default only in the embedded demo that `make run` starts (DEBUG and no
# REDIS_URL); off in production and in the tests unless DEMO_SIMULATOR says otherwise.
DEMO_SIMULATOR = env_bool("DEMO_SIMULATOR", DEBUG and EMBEDDED_SERVICES)
DEMO_SIMULATOR_S = env_int("DEMO_SIMULATOR_S", 20)  # seconds between ticks
DEMO_SIMULATOR_MAX_LOTS = env_int("DEMO_SIMULATOR_MAX_LOTS", 30)  # open simulated lots at most
if DEMO_SIMULATOR:
    CELERY_BEAT_SCHEDULE["demo-simulator-tick"] = {
        "task": "frontend.tasks.demo_simulator_tick",
        "schedule": timedelta(seconds=DEMO_SIMULATOR_S),
        "options": {"expires": DEMO_SIMULATOR_S},
    }

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "frontend:login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "frontend:home"

# Lock-out after repeated failed logins (django-axes), per address and account.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "market.accounts.lockout.lockout_response"
AXES_USERNAME_FORM_FIELD = "username"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_IPWARE_PROXY_COUNT = env_int("PROXY_COUNT", 0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if env_int("PROXY_COUNT", 0) else ["REMOTE_ADDR"]
)

# Rate limits (django-ratelimit for pages, DRF throttles for the API), shared through the cache.
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
RATE_LIMITS = {
    "login": os.environ.get("RATE_LIMIT_LOGIN", "20/m"),
    "signup": os.environ.get("RATE_LIMIT_SIGNUP", "10/h"),
}

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "market.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "market.core.drf.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "market.core.drf.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": os.environ.get("RATE_LIMIT_LOGIN", "20/m"),
        "signup": os.environ.get("RATE_LIMIT_SIGNUP", "10/h"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "再生资源交易市场 API / Recyclables Market API",
    "DESCRIPTION": "Organisations, members, licences, regions; later lots, trading, deals and price indices.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from the sidecar package's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "OrganisationRoleEnum": "market.accounts.models.OrganisationRole",
        "MemberRoleEnum": "market.accounts.models.MemberRole",
        "VerificationStatusEnum": "market.accounts.models.VerificationStatus",
        "LicenceStatusEnum": "market.accounts.models.LicenceStatus",
        "LicenceKindEnum": "market.accounts.models.LicenceKind",
        "RegionLevelEnum": "market.core.models.RegionLevel",
        "LotStatusEnum": "listings.models.LotStatus",
        "MediaKindEnum": "listings.models.MediaKind",
        "TradeModeEnum": "listings.models.TradeMode",
        "PackagingEnum": "listings.models.Packaging",
        "UnitEnum": "listings.models.Unit",
        "WantedStatusEnum": "listings.models.WantedStatus",
        "DefaultPartyEnum": "market.deals.models.DefaultParty",
        "PaymentMethodEnum": "market.deals.models.PaymentMethod",
        "PaymentPurposeEnum": "market.deals.models.PaymentPurpose",
        "PaymentStatusEnum": "market.deals.models.PaymentStatus",
        "DealStatusEnum": "market.deals.models.DealStatus",
        "WeighingStatusEnum": "market.deals.models.WeighingStatus",
        "ManifestStatusEnum": "market.deals.models.ManifestStatus",
        "LedgerKindEnum": "market.deals.models.LedgerKind",
        "DepositMethodEnum": "market.trading.models.DepositMethod",
        "DepositStatusEnum": "market.trading.models.DepositStatus",
        "SaleStatusEnum": "market.trading.models.SaleStatus",
    },
}

# --- Languages and time ---------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["market.formats"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files and uploads ---------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Uploaded documents are private: they are served only through permission-checked views, so
# MEDIA_URL is never routed to the file system.
MEDIA_URL = "/private-media/"
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
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
LICENCE_DOCUMENT_MAX_BYTES = env_int("LICENCE_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = 20
# The first handler drops what passes the largest accepted file size instead of writing it to disk
# (market/core/uploads.py); the upload is then refused as too large.
FILE_UPLOAD_HANDLERS = [
    "market.core.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- Email ----------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "再生资源交易市场 <noreply@market.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- External services used by later capabilities -------------------------------------------
ELASTICSEARCH_URL = os.environ.get("ELASTICSEARCH_URL", "")
ELASTICSEARCH_INDEX_PREFIX = os.environ.get("ELASTICSEARCH_INDEX_PREFIX", "market-")
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")  # Stripe.js on the payment page
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")  # empty: Stripe's own address
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
STRIPE_WEBHOOK_TOLERANCE_S = env_int("STRIPE_WEBHOOK_TOLERANCE_S", 300)

# --- Security (production defaults follow DEBUG; each can be overridden) --------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # Django logs every 4xx answer as a warning: on a market they are answers (a bid too low, a
        # closed auction, each with its code), hundreds a second on a busy lot, and the access log
        # counts them. Server errors (5xx) are still logged. LOG_REQUEST_LEVEL=WARNING for the 4xx.
        "django.request": {"level": os.environ.get("LOG_REQUEST_LEVEL", "ERROR")},
    },
}

# The public address of the market, for links in e-mails sent by background jobs.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Market rules ---------------------------------------------------------------------------
MARKET_NAME = _("再生资源交易市场")
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 14)
LICENCE_EXPIRY_WARNING_DAYS = env_int("LICENCE_EXPIRY_WARNING_DAYS", 30)
# A verified seller's non-hazardous lot is published on submission; hazardous lots always need an operator.
LOTS_AUTO_PUBLISH = env_bool("LOTS_AUTO_PUBLISH", True)
LOT_MEDIA_MAX_BYTES = env_int("LOT_MEDIA_MAX_BYTES", 10 * 1024 * 1024)
SAVED_SEARCHES_MAX = env_int("SAVED_SEARCHES_MAX", 20)
# Trading: the default cap on soft-close extensions (seconds past the planned end) when the seller
# sets none; how far ahead the sweeper schedules an exact close; when bidders hear "closing soon".
TRADING_MAX_EXTENSION_S = env_int("TRADING_MAX_EXTENSION_S", 3600)
TRADING_CLOSE_LOOKAHEAD_S = env_int("TRADING_CLOSE_LOOKAHEAD_S", 90)
# The bid gateway (market.trading.gateway): the common bid through the API answered in two round
# trips, without the REST framework's view; 0 sends every bid through the view.
BID_GATEWAY = env_bool("BID_GATEWAY", True)
TRADING_CLOSING_WARNING_S = env_int("TRADING_CLOSING_WARNING_S", 15 * 60)

# Deals: the platform's service fee (paid by the seller, a fraction of the settled amount), days to
# pay after the award, days added to the lot's pickup date when payment is late in the window, the
# weighbridge tolerance, days after settlement before a deal completes by itself.
DEALS_FEE_RATE = Decimal(os.environ.get("DEALS_FEE_RATE", "0.005"))
DEALS_PAYMENT_DAYS = env_int("DEALS_PAYMENT_DAYS", 3)
DEALS_PICKUP_DAYS = env_int("DEALS_PICKUP_DAYS", 7)
DEALS_WEIGHT_TOLERANCE = Decimal(os.environ.get("DEALS_WEIGHT_TOLERANCE", "0.02"))
DEALS_COMPLETE_AFTER_DAYS = env_int("DEALS_COMPLETE_AFTER_DAYS", 3)
# The platform's account that bank transfers (对公转账) go to: shown on the payment page.
PLATFORM_BANK_NAME = os.environ.get("PLATFORM_BANK_NAME", "中国工商银行北京分行营业部")
PLATFORM_BANK_ACCOUNT = os.environ.get("PLATFORM_BANK_ACCOUNT", "0200 0045 0920 1234 567")
PLATFORM_ACCOUNT_NAME = os.environ.get("PLATFORM_ACCOUNT_NAME", "再生资源交易市场运营有限公司")

# Statistics: the online trade value the market aims at in a year (yuan; dashboards show the year's
# value beside it), and how long the open data (with disclosure control) is cached, in seconds.
STATS_ANNUAL_TARGET_YUAN = Decimal(os.environ.get("STATS_ANNUAL_TARGET_YUAN", "500000000000"))
STATS_OPEN_DATA_CACHE_S = env_int("STATS_OPEN_DATA_CACHE_S", 600)

# Price indices (METHODOLOGY.md): the daily cut-off (Asia/Shanghai), public holidays that are not
# business days (comma-separated ISO dates), the minimum tonnes of a cell for a transaction-based
# value. Each category's minimum lot for the index is set on the category in the admin.
INDEX_CUTOFF = os.environ.get("INDEX_CUTOFF", "16:30")
INDEX_HOLIDAYS = [d for d in os.environ.get("INDEX_HOLIDAYS", "").split(",") if d.strip()]
INDEX_MIN_CELL_TONNES = Decimal(os.environ.get("INDEX_MIN_CELL_TONNES", "0"))
