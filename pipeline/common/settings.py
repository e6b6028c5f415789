"""Typed settings for every streamfold process.

Built once in an entrypoint (`streamfold serve`, `worker`, `api`, tests) and passed in;
nothing reads the environment at import time. Every field can be set from the
environment with the ``STREAMFOLD_`` prefix, e.g. ``STREAMFOLD_KAFKA_BOOTSTRAP``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.domain.timeline_policy import TimelinePolicy


class Settings(BaseSettings):
    """All configuration of a streamfold deployment.

    Defaults describe the local stack started by ``make up``: Kafka on 127.0.0.1:39092,
    Redis on 127.0.0.1:36379, ClickHouse embedded through chdb under ``home``.

    Raises:
        pydantic.ValidationError: a value has the wrong type, or exactly_once is asked
            for.
    """

    model_config = SettingsConfigDict(
        env_prefix="STREAMFOLD_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    home: Path = Field(default=Path(".local"), description="Data, logs and pid files.")

    kafka_bootstrap: str = "127.0.0.1:39092"
    redis_url: str = "redis://127.0.0.1:36379/0"
    clickhouse_dsn: str = Field(
        default="",
        description="chdb:///abs/path (embedded engine, default under home) or http(s)://.",
    )
    analyst_clickhouse_dsn: str = Field(
        default="",
        description="http(s):// DSN of the read-only analyst user that analyst SQL runs as "
        "(README, 'Analyst SQL'). Unset: a readonly session on clickhouse_dsn.",
    )

    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description="exactly_once is refused: see the validator. Deterministic event ids "
        "and idempotent projections make at_least_once replays harmless.",
    )
    commit_interval_ms: int = Field(
        default=100, ge=10, description="Offset commit (and, exactly_once, transaction) period."
    )
    app_id: str = Field(default="streamfold", description="Faust app id = consumer group.")
    producer_name: str = "streamfold-pipeline"

    timelines: TimelinePolicy = Field(
        default_factory=TimelinePolicy,
        description="Fan-out: timeline cap, backfill, celebrity line and hysteresis.",
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="API processes `serve` starts on api_port (SO_REUSEPORT). Default: cores.",
    )
    validation_workers: int = Field(
        default=1, ge=1, description="Tracking validation processes `serve` starts."
    )
    http: Literal["granian", "httptools", "h11"] = Field(
        default="granian",
        description="The API's HTTP server: granian (Rust, embedded in each API process), "
        "or uvicorn with the httptools or the pure-Python h11 parser. Measured: granian "
        "~15 % more events/s at batches of 100, the same at 1,000 (issue 8).",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="Event loop of the api, validation and sinks processes (the Faust "
        "commands process keeps asyncio's).",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        description="A worker role deployed on its own serves Prometheus /metrics here (0: "
        "off). Under `serve`, the API's /metrics covers every child.",
    )
    public_url: str = Field(
        default="",
        description="The API's address as browsers reach it (https://collect.example.com), "
        "for the analytics.js settings (apiHost). Unset: the address each request came to.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        validation_alias=AliasChoices("STREAMFOLD_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"),
        description="Proxies whose X-Forwarded-For/-Proto the API trusts (comma-separated, "
        "'*' for any): uvicorn's FORWARDED_ALLOW_IPS, read for granian too. The per-address "
        "login limit keys on the client address this yields.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins whose pages may call the read and admin routes (JSON list), "
        "e.g. a browser admin client; empty = those routes send no CORS headers. The "
        "ingestion edge allows every origin, narrowed per system (allowed origins).",
    )
    command_timeout_s: float = Field(default=5.0, gt=0, description="How long a route waits.")
    max_body_bytes: int = Field(default=1_048_576, description="Largest request body, bytes.")

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 key of the API's bearer tokens. Unset: <home>/jwt-secret, made "
        "by `streamfold up` (the local stack) or by a test start; any other start without "
        "one refuses to run. There is no built-in default.",
    )
    jwt_ttl_s: int = Field(default=3600, gt=0)
    jwt_issuer: str = Field(
        default="streamfold",
        min_length=1,
        description="The `iss` claim (RFC 7519 §4.1.1) the API puts in its tokens and "
        "requires back; a token from another issuer sharing the key is refused.",
    )
    jwt_audience: str = Field(
        default="streamfold-api",
        min_length=1,
        description="The `aud` claim (RFC 7519 §4.1.3) the API puts in its tokens and "
        "requires back: a token minted for another service is refused here.",
    )
    password_link_ttl_s: int = Field(
        default=86_400,
        ge=1,
        description="How long, s, a one-time link to set a converted person's first "
        "password stays valid (POST /api/auth/password-links).",
    )
    principal_cache_ttl_s: float = Field(
        default=2.0,
        ge=0,
        description="How long, s, an API process reuses a token holder's current role and "
        "status read from the users read model (0: read on every request). A demoted, "
        "deactivated or deleted user loses access within this time after the read model "
        "shows the change.",
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Inbound webhook subscriptions (POST /api/events/webhook): name -> "
        "secret, as JSON. A sender names its subscription and proves it with the secret "
        "in the query string (?subscription=NAME&key=SECRET: what Event Grid can send). "
        "Empty: the webhook refuses everything.",
    )
    register_per_address: int = Field(
        default=30,
        ge=1,
        description="Self-registrations (POST /api/users/register) per client address per "
        "register_window_s: a token bucket of this size refilling evenly. Each costs an "
        "argon2id hash (~41 ms of CPU), so one client cannot spend a server's cores or fill "
        "the users table (seed 001).",
    )
    register_window_s: float = Field(
        default=3600.0, gt=0, description="The window of the registration limit, s."
    )
    login_tries_per_account: int = Field(
        default=10,
        ge=1,
        description="Failed logins per account (login name, trimmed and lowercased) per "
        "login_window_s: a token bucket of this size refilling at this many per window. "
        "Beyond it POST /api/auth/token answers 429 before any password hashing (OWASP "
        "Authentication Cheat Sheet: throttle per account).",
    )
    login_tries_per_address: int = Field(
        default=30,
        ge=1,
        description="Failed logins per client address per login_window_s (a token bucket "
        "like login_tries_per_account): bounds one client guessing across many accounts. "
        "The address is the peer's; X-Forwarded-For counts only from the proxies in "
        "uvicorn's FORWARDED_ALLOW_IPS (default: loopback).",
    )
    login_window_s: float = Field(
        default=60.0, gt=0, description="The window of the login limits, s."
    )
    admin_email: str = "admin@example.com"
    admin_password: SecretStr | None = None
    claims_key: SecretStr | None = Field(
        default=None,
        description="Keys the HMAC that names uniqueness claims on Kafka (email, username). "
        "Unset: <home>/claims-key, made once on a fresh install. Never change it: "
        "uniqueness depends on it. Required when env=production.",
    )

    recent_commands_per_aggregate: int = Field(
        default=100, ge=1, description="Command ids remembered per aggregate for idempotency."
    )
    command_batch_records: int = Field(
        default=500, ge=1, description="Commands a command agent handles per round trip."
    )
    command_batch_ms: int = Field(
        default=1,
        ge=1,
        description="...or what arrived within this long, ms (latency it adds; under load the "
        "next batch fills while one is handled, so a short wait keeps big batches).",
    )
    projection_batch_rows: int = Field(default=5000, ge=1)
    projection_batch_ms: int = Field(default=500, ge=1)
    projection_plugins: list[str] = Field(
        default_factory=list,
        description="Projections to run besides the built-ins and the installed "
        "`streamfold.projections` entry points: `module:attribute` paths (JSON list).",
    )
    projection_promote_max_lag: int = Field(
        default=100,
        ge=0,
        description="`projections promote` waits until a rebuild is at most this many "
        "records behind its topics' ends.",
    )

    timelines_batch_ms: int = Field(
        default=20,
        ge=1,
        description="The timelines projection's wait for a batch, ms: a chirp reaches live "
        "feeds once projected, so short.",
    )
    validation_batch_records: int = Field(
        default=5000, ge=1, description="tracking.raw records validation takes per batch."
    )
    validation_batch_ms: int = Field(
        default=100,
        ge=1,
        description="...or what arrived within this long, ms: cheap per record, so short "
        "waits keep ingest -> queryable latency low.",
    )
    rejections_batch_rows: int = Field(default=5000, ge=1, description="Rejection rows a batch.")
    rejections_batch_ms: int = Field(default=100, ge=1, description="...or this long, ms.")
    tracking_batch_rows: int = Field(default=50_000, ge=1, description="ClickHouse insert rows.")
    tracking_batch_ms: int = Field(
        default=200,
        ge=1,
        description="...or this long, ms. 500 gave ingest -> queryable p99 1.3 s at half "
        "the stored rate, 200 gave 0.87 s with no loss of throughput (bench/ingest.py).",
    )
    dedup_window_s: int = Field(default=86_400, ge=0, description="message_id dedup window.")
    stall_threshold_s: float = Field(
        default=60.0,
        gt=0,
        description="/readyz answers 503 when a batch consumer (the tracking sink, "
        "validation, projections) has records waiting and has not committed for this "
        "long, s. Its largest batch (50,000 rows) takes seconds to store; an outage of "
        "the store or a batch it refuses over and over takes longer.",
    )
    edge_core: Literal["auto", "compiled", "python"] = Field(
        default="auto",
        description="The per-event path of ingestion (the edge's decoding, the tracking "
        "sink's and plugins' staged container files): the compiled core "
        "(pipeline/edge/native, built by make install where cargo is) or the Python path "
        "it is held equal to. auto: the core when it is built; compiled: refuse to start "
        "without it; python: never (to measure or compare).",
    )
    key_cache_ttl_s: float = Field(
        default=2.0, ge=0, description="In-process cache of API keys and structures, s."
    )
    # Both limits count every event submitted, accepted or rejected; a burst of at least
    # 1,000 lets the largest batch (api.routes.ingest.MAX_BATCH_EVENTS) through. The
    # defaults stop a runaway key from taking a whole deployment, and sit above what one
    # API host takes (2 cores here: ~22,000 events/s measured), so the hardware, not the
    # limit, is the first ceiling a load meets; bench/ingest.py sets its own and prints them.
    ingest_rate_per_s: float = Field(
        default=100_000, gt=0, description="Events/s per system (API key), accepted or not."
    )
    ingest_burst: float = Field(
        default=200_000, ge=1000, description="Per-system bucket size, events."
    )
    partner_ingest_rate_per_s: float = Field(
        default=200_000,
        gt=0,
        description="Events/s per partner, over all its systems, accepted or not (beside "
        "the per-system limit: a partner cannot multiply its rate by adding systems).",
    )
    partner_ingest_burst: float = Field(
        default=400_000, ge=1000, description="Per-partner bucket size, events."
    )

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        # the environment's JSON is decoded by pydantic-settings; the same text given as
        # an argument (tests build Settings from their environment) is decoded here
        return orjson.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.clickhouse_dsn:
            # frozen model: set the derived default through object.__setattr__ once.
            dsn = f"chdb://{(self.home / 'clickhouse').resolve()}"
            object.__setattr__(self, "clickhouse_dsn", dsn)
        if self.processing_guarantee == "exactly_once":
            # Measured with faust-streaming 0.15 / aiokafka 0.14 / Kafka 3.9.1: Faust puts a
            # send into the transaction of its *destination* partition and commits only the
            # transactions of partitions with offsets to commit. Our reservation chain and
            # replies cross partitions, so such a transaction stays open and its partition's
            # last stable offset stops every read_committed reader (create-admin hung).
            raise ValueError(
                "processing_guarantee=exactly_once is not supported: Faust's transactions "
                "stall on this topology (docs/decisions.md, Exactly-once refused); "
                "use at_least_once"
            )
        return self

    @property
    def embedded_clickhouse(self) -> bool:
        """True for a ``chdb://`` DSN: one process owns the engine (chdb locks its dir)."""
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"
