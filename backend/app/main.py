"""The FastAPI application: `uvicorn app.main:app`, started from backend/."""

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.api.hsts import StrictTransportSecurity
from app.api.routes import (
    account,
    admin,
    admin_users,
    auth,
    chats,
    events,
    messages,
    meta,
    search,
    shares,
    sso,
    transfer,
    tree,
    uploads,
    usage,
)
from app.api.schemas import ERROR_RESPONSES
from app.core.config import Settings, get_settings
from app.core.container import Container
from app.core.redis_keys import RedisKeys
from app.core.shutdown import on_stop_signal
from app.db.session import make_engine, make_sessionmaker
from app.services import accounts, session_ends
from app.services.broker import Broker
from app.services.errors import RateLimited, ServiceError, Unauthorized
from app.services.event_hub import EventHub
from app.services.events import EventLog
from app.services.hashing import HashPool
from app.services.keyregistry import restore_forever
from app.services.open_streams import OpenStreams
from app.services.outbox import relay_forever
from app.services.responses import ResponseConsumer
from app.services.uploads import sweep_forever as upload_sweep_forever

log = logging.getLogger("app")

REDIS_TIMEOUT_SECONDS = 2.0
REDIS_POOL_SIZE = 50
# The shared event reader's XREAD BLOCK: it is cut short whenever a chat joins, so this only
# bounds how long a dead connection goes unnoticed.
EVENTS_BLOCK_MS = 5_000
BUSY_RETRY_SECONDS = 1
DATABASE_DOWN_RETRY_SECONDS = 5


def _container(settings: Settings) -> Container:
    engine = make_engine(settings)
    # Commands are short (no blocking reads share this pool), so a burst waits its turn for a
    # connection rather than failing as redis-py's default pool does past 100.
    pool = BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=REDIS_POOL_SIZE,
        timeout=REDIS_TIMEOUT_SECONDS,
        decode_responses=True,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
    redis = Redis(connection_pool=pool)
    keys = RedisKeys(settings.REDIS_KEY_PREFIX)
    stopping = asyncio.Event()
    hub = EventHub(settings.REDIS_URL, redis, keys, EVENTS_BLOCK_MS, stopping)
    return Container(
        settings=settings,
        engine=engine,
        autocommit=engine.execution_options(isolation_level="AUTOCOMMIT"),
        sessionmaker=make_sessionmaker(engine),
        redis=redis,
        keys=keys,
        events=EventLog(redis, keys),
        hub=hub,
        open_streams=OpenStreams(
            redis,
            keys,
            settings.USER_MAX_OPEN_STREAMS,
            settings.STREAM_SESSION_CHECK_SECONDS,
            hub,
        ),
        broker=Broker(settings),
        passwords=HashPool(settings.ARGON2_CONCURRENCY, settings.ARGON2_QUEUE),
        stopping=stopping,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    c = _container(app.state.settings)
    app.state.container = c
    on_stop_signal(c.stopping)
    c.hub.start()
    tasks = [
        asyncio.create_task(c.broker.run(ResponseConsumer(c)), name="broker"),
        asyncio.create_task(relay_forever(c), name="outbox-relay"),
        asyncio.create_task(accounts.remove_expired_forever(c), name="session-cleanup"),
        asyncio.create_task(c.open_streams.check_forever(c.autocommit), name="stream-check"),
        asyncio.create_task(restore_forever(c), name="key-registry"),
        asyncio.create_task(session_ends.listen_forever(c), name="session-ends"),
        asyncio.create_task(upload_sweep_forever(c), name="upload-sweep"),
    ]
    # What start-up made lives as long as the process: out of the collector's sight, a full
    # collection scans only what requests made (50 ms pauses under load otherwise).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        c.stopping.set()
        await c.outbox.drain(c)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await c.broker.close()
        await c.hub.close()
        await c.events.close()
        await c.engine.dispose()
        c.passwords.close()


async def _service_error(_: Request, error: ServiceError) -> JSONResponse:
    headers = {}
    if isinstance(error, RateLimited):  # Busy (503) too
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)


async def _database_down(_: Request, error: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", error.__class__.__name__)
    return JSONResponse(
        {"detail": "the database is unavailable right now; try again shortly"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_DOWN_RETRY_SECONDS)},
    )


async def _busy(_: Request, error: PoolTimeoutError) -> JSONResponse:
    # Every pooled connection stayed taken for DB_POOL_TIMEOUT_SECONDS: load, not an outage.
    log.warning("no database connection free in time: %s", error)
    return JSONResponse(
        {"detail": "the server is busy right now; try again in a moment"},
        status_code=503,
        headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
    )


async def _database_error(request: Request, error: DBAPIError) -> JSONResponse:
    if error.connection_invalidated:
        return await _database_down(request, error)
    return await _internal(request, error)


async def _redis_down(_: Request, error: RedisError) -> JSONResponse:
    log.warning("Redis unavailable: %s", error.__class__.__name__)
    return JSONResponse(
        {"detail": "Redis is unavailable right now; try again shortly"}, status_code=503
    )


async def _invalid_request(_: Request, error: RequestValidationError) -> Response:
    # Leave out FastAPI's echo of the input: it may be a password, or text that cannot even be
    # encoded (a lone surrogate); ASCII-escaped JSON can always be sent.
    details = [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]
    return Response(
        json.dumps({"detail": details}, ensure_ascii=True),
        status_code=422,
        media_type="application/json",
    )


async def _internal(_: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=error)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(
        level=settings.LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Swagger UI's files come from the fastapi-offline package (pinned in uv.lock), not a CDN.
    app = FastAPIOffline(
        title="Chat backend",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        static_url="/api/docs/assets",
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
    )
    app.state.settings = settings
    if settings.COOKIE_SECURE:
        app.add_middleware(StrictTransportSecurity)
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    routers = (meta.router, auth.router, chats.router, messages.router, events.router, admin.router)
    routers += (search.router, transfer.router, shares.router)
    routers += (account.router, admin_users.router, sso.router)
    for router in routers:
        app.include_router(router, prefix="/api", responses=ERROR_RESPONSES)
    app.include_router(tree.router, prefix="/api", responses=ERROR_RESPONSES)
    app.include_router(usage.router, prefix="/api", responses=ERROR_RESPONSES)
    app.include_router(uploads.router, prefix="/api", responses=ERROR_RESPONSES)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ServiceError, _service_error)
    for down in (OperationalError, InterfaceError, OSError):
        app.add_exception_handler(down, _database_down)
    app.add_exception_handler(PoolTimeoutError, _busy)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(RedisError, _redis_down)
    app.add_exception_handler(Exception, _internal)
    return app


app = create_app()
