"""The api role: the HTTP API (ingestion needs only Kafka and Redis; queries go to the
store process's socket with ``chdb://``, straight to the server with ``http(s)://``).
Scales by count on one port: every API process binds it with SO_REUSEPORT."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import structlog
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis

from api.app import create_api
from api.deps import Services
from connectors.clickhouse import ClickHouse
from connectors.kafka import AsyncProducer
from connectors.ratelimit import Buckets, Limit
from connectors.store import QueryStore, StoreClient, socket_path
from deploy.secrets import claim_keys, with_jwt_secret
from pipeline.common import compiled
from pipeline.common.settings import Settings
from pipeline.domain.tracking import RECORDED_EVENT_TYPE, RECORDED_SCHEMA_VERSION
from pipeline.edge.ingest import Ingest
from pipeline.edge.validation import recorder
from pipeline.projections import registry
from pipeline.projections.partner_keys.lookups import KeyResolver
from pipeline.write.command_bus import CommandBus
from schemas.codec import AvroCodec

log = structlog.get_logger(__name__)


def open_query_store(settings: Settings) -> QueryStore:
    """What the API queries: the store process's socket for ``chdb://`` (the engine is
    that process's alone), else a clickhouse-connect facade of its own."""
    if settings.clickhouse_dsn.startswith("chdb:"):
        return StoreClient(socket_path(settings.home))
    tables = registry.analyst_tables(settings.projection_plugins)
    return ClickHouse.open(settings.clickhouse_dsn, analyst_tables=tables)


async def run(settings: Settings, stop: asyncio.Event, redis: Redis, codec: AvroCodec) -> None:
    """Serve the API on ``settings.api_port`` until ``stop`` is set, then drain open
    requests, stop the command bus, flush the ingest producer and close the store client.
    Raises what opening Kafka or the store raises (the process exits; its supervisor
    restarts it)."""
    settings = with_jwt_secret(settings, create=False)
    keys = await asyncio.to_thread(claim_keys, settings)
    store = await asyncio.to_thread(open_query_store, settings)
    bus = CommandBus(
        settings.kafka_bootstrap,
        client_id="streamfold-api",
        timeout_s=settings.command_timeout_s,
        claim_keys=keys,
    )
    await bus.start()
    ingest_producer = AsyncProducer(
        settings.kafka_bootstrap,
        client_id="streamfold-ingest",
        delivery_timeout_s=settings.command_timeout_s,
        **{"linger.ms": 10},
    )
    write_keys = KeyResolver(redis, ttl_s=settings.key_cache_ttl_s)
    core = compiled.load(settings.edge_core)
    try:
        ingest = Ingest(
            ingest_producer,
            Buckets(redis),
            recorder=recorder(settings, codec=codec, redis=redis, core=core),
            keys=write_keys,
            per_system=Limit(settings.ingest_rate_per_s, settings.ingest_burst),
            per_partner=Limit(settings.partner_ingest_rate_per_s, settings.partner_ingest_burst),
            max_body_bytes=settings.max_body_bytes,
            core=core,
            # the layout both paths write (recorded_envelope's schema version)
            fingerprint=codec.registry.fingerprint(RECORDED_EVENT_TYPE, RECORDED_SCHEMA_VERSION),
        )
        services = Services(
            settings=settings,
            clickhouse=store,
            redis=redis,
            bus=bus,
            keys=write_keys,
            ingest=ingest,
        )
        app = create_api(services)
        if settings.http == "granian":
            await _serve_granian(app, settings, stop)
        else:
            await _serve_uvicorn(app, settings, stop)
    finally:
        await bus.stop()
        ingest_producer.close()
        if isinstance(store, StoreClient):
            await store.aclose()
        else:
            store.close()


async def _serve_uvicorn(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", http=settings.http,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )  # fmt: skip
    server = _Server(config)
    serving = asyncio.create_task(
        server.serve(sockets=[_shared_socket(settings.api_host, settings.api_port)]),
        name="api",
    )
    log.info("api listening", url=settings.api_url, server="uvicorn", http=settings.http)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True  # drain open requests, then return
    stopping.cancel()
    await serving


async def _serve_granian(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    """granian's embedded server (upstream marks it experimental) on this process's loop;
    its socket is SO_REUSEPORT like :func:`_shared_socket`'s, so API processes share the
    port the same way."""
    from granian.constants import Interfaces
    from granian.server.embed import Server
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    # uvicorn applies this itself (Config.proxy_headers): the client address behind a
    # trusted proxy comes from X-Forwarded-For, and the per-address login limit keys on it.
    # Without it every client behind the proxy shared one login bucket under granian.
    server = Server(
        ProxyHeadersMiddleware(app, trusted_hosts=settings.forwarded_allow_ips),
        address=settings.api_host,
        port=settings.api_port,
        interface=Interfaces.ASGINL,
        backlog=2048,
        websockets=True,
        log_enabled=False,
    )
    serving = asyncio.create_task(server.serve(), name="api")
    log.info("api listening", url=settings.api_url, server="granian")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.stop()
    stopping.cancel()
    await serving


def _shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket every API process of this host binds together: the kernel
    spreads connections over them (SO_REUSEPORT, Linux >= 3.9)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: after draining it re-raises the signal it
    caught (``Server.capture_signals``), so the process died with 143 before this module's
    shutdown ran (no producer flush, no group leave, chdb not closed: every deploy was a
    crash recovery). Signals set ``run``'s stop event instead, and ``run`` stops
    everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
