"""The FastAPI application: routers, start-up (database, media workers) and shutdown."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from vbank import VbankError, __version__
from vbank.api import (
    admin,
    auth,
    evidence,
    health,
    mall,
    pages,
    risk,
    services,
    visits,
    ws,
)
from vbank.api.bodylimit import BodyLimit
from vbank.api.deps import Problem
from vbank.api.pages import WEB_DIR
from vbank.api.standing import standings_of
from vbank.branch import Branch
from vbank.cluster.store import QueueStore
from vbank.config import Settings
from vbank.domain.mall import MALL_ASSETS, MALL_PATH, load_mall
from vbank.domain.services import SERVICES
from vbank.limits import Limits
from vbank.rewards import Rewards
from vbank.rtc.lag import LoopLagMonitor
from vbank.rtc.worker import MediaPool
from vbank.store import repo
from vbank.store.db import make_engine, sessionmaker
from vbank.store.demo import load_demo
from vbank.store.evidence import unsealed_sessions
from vbank.store.evidence_keys import signing_key
from vbank.store.mall import ensure_items, ensure_prizes
from vbank.store.points import PointsDesk
from vbank.store.recovery import recover
from vbank.store.timestamps import authority, evidence_trust

if TYPE_CHECKING:
    from vbank.cluster.node import Cluster

log = logging.getLogger(__name__)
EXPIRY_FIRST_DELAY_S = 120.0


def create_app(settings: Settings) -> FastAPI:
    """Build the application; the database must already be migrated."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.sessions = sessionmaker(engine)
        app.state.standings = standings_of(app.state.sessions, settings)
        app.state.mall = load_mall(settings.mall or MALL_PATH)
        async with app.state.sessions.begin() as db:  # one node at a time
            await repo.seeding(db)
            if settings.demo:
                await load_demo(db)
                await ensure_items(db, list(app.state.mall.items.values()))
            await ensure_prizes(db, list(app.state.mall.lotteries.values()))  # once
        app.state.desk = desk = PointsDesk(settings.database_url, app.state.mall)
        desk.start()
        queue, cluster = _cluster(settings)
        await recover(app.state.sessions, settings.data, settings.node_name)
        # The evidence key, made on first start (0600): a key others may read, or one the
        # keyring retired, stops the start here rather than failing every seal.
        signing_key(settings.evidence_key_path, settings.evidence_keyring_path)
        if settings.evidence_key_path.resolve().is_relative_to(settings.data.resolve()) \
                and not settings.demo:
            log.warning("the evidence key %s is inside the data directory: whoever "
                        "holds the directory can forge evidence; set VBANK_EVIDENCE_KEY to a "
                        "path outside it (README: Evidence)", settings.evidence_key_path)
        authority(settings)  # a timestamp authority without its certificate stops the start
        app.state.evidence_trust = evidence_trust(settings)
        # calls a crash left open (what was recorded up to it), and any whose seal failed
        async with app.state.sessions() as db:
            unsealed = await unsealed_sessions(db, settings.node_name)
        lag = LoopLagMonitor()
        lag.start()
        media = MediaPool(settings.max_sessions_per_worker, settings.admission_max_lag_ms)
        branch = Branch(settings, app.state.sessions, media, lag, queue, cluster)
        app.state.branch = branch
        await branch.sealer.seal_left_over(unsealed)
        branch.rewards = app.state.rewards = Rewards(desk, app.state.mall, branch.send_to,
                                                     app.state.sessions)
        if cluster is not None and branch.nodes is not None:
            nodes = branch.nodes

            async def from_node(kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
                if kind == "forward":
                    await ws.forwarded(branch, payload)
                elif kind == "reattach":
                    return await ws.reattached(branch, payload)
                else:
                    await nodes.from_node(kind, payload)
                return None

            async def rebuild() -> None:
                await nodes.rebuild()
                await app.state.limits.rebuild()

            app.state.limits.share(cluster.redis, settings.node_name, settings.redis_prefix)
            await cluster.start(from_node, rebuild, nodes.node_lost)
        await branch.start()
        expiry = asyncio.create_task(_expire_points(desk, settings.points_expiry_every_s))
        settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        await media.start(settings.media_workers, settings.recordings_dir.resolve(),
                          settings.ice_host_list, settings.ice_server_list,
                          branch.on_media_event, settings.digital_human)
        # Everything made so far lives as long as the server: collect once now and keep it
        # out of later collections, so that no full collection of start-up objects stalls
        # the event loop (and admission) in the first seconds of taking calls.
        gc.collect()
        gc.freeze()
        lag.reset()
        try:
            yield
        finally:
            expiry.cancel()
            await branch.shutdown()
            if cluster is not None:
                await cluster.stop()
            await desk.stop()
            await media.stop()
            await lag.stop()
            await engine.dispose()

    app = FastAPI(title="vbank", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(BodyLimit, default=settings.max_body_bytes,
                       routes=[(auth.router.prefix + "/", settings.max_login_body_bytes)])
    app.state.limits = Limits(settings)
    # the mall first: routes are matched in order, and redemptions are the busiest requests
    for module in (mall, auth, services, admin, evidence, risk, visits, health, ws, pages):
        app.include_router(module.router)
    if MALL_ASSETS.is_dir():  # before /static, which would otherwise take its paths
        app.mount("/static/mall", StaticFiles(directory=MALL_ASSETS), name="mall-pictures")
    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    document_auth_errors(app)

    @app.exception_handler(VbankError)
    async def vbank_error(_: Request, exc: VbankError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer, able to echo any input: a body of another content type is
        # validated as bytes, which need not be UTF-8 (FastAPI's encoder then fails: a 500)
        errors = jsonable_encoder(exc.errors(), custom_encoder={
            bytes: lambda raw: raw.decode("utf-8", "replace")})
        return _EchoResponse({"detail": errors}, status_code=422)

    return app


class _EchoResponse(JSONResponse):
    """A JSON response that can always be written: a lone surrogate in what it echoes
    (``vbank.api.textcheck`` keeps them out of JSON bodies) is sent as "?", not a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8", "replace")


def _cluster(settings: Settings) -> tuple[QueueStore | None, Cluster | None]:
    """With ``--redis``: the shared queue and the link to the other nodes."""
    if not settings.redis:
        return None, None
    from vbank.cluster.node import Cluster
    from vbank.cluster.redisqueue import RedisQueue

    if settings.database_url.startswith("sqlite"):
        log.warning("several nodes share Redis but this one keeps its records in SQLite: "
                    "the other nodes cannot see them; give every node the same --db")
    cluster = Cluster(settings.redis, settings.node_name, settings.redis_prefix,
                      settings.node_timeout_s)
    queue = RedisQueue(cluster.redis, settings.node_name,
                       {s.id: s.handle_time_s for s in SERVICES.values()},
                       settings.redis_prefix)
    return queue, cluster


def document_auth_errors(app: FastAPI) -> None:
    """Every operation behind the bearer token also answers 401 (no valid token) and 403
    (a role that may not), and every operation that takes a body 400 (not valid Unicode) and
    413 (too large): say so in ``/openapi.json``, with the error body's schema. A 422
    is FastAPI's list of field errors, or a sentence when a business rule refuses the
    request (too few points, an unknown service…): its schema says both."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas.setdefault("Problem", Problem.model_json_schema())
            invalid = schemas.get("HTTPValidationError", {}).get("properties", {})
            if "detail" in invalid:
                invalid["detail"] = {"title": "Detail", "anyOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                    {"type": "string"}]}
            body = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    if operation.get("security"):
                        answers = operation.setdefault("responses", {})
                        answers.setdefault("401", {"description": "no valid bearer token",
                                                   "content": body})
                        answers.setdefault("403", {"description": "your role may not",
                                                   "content": body})
                    if "requestBody" in operation:  # what vbank.api.bodylimit refuses
                        answers = operation.setdefault("responses", {})
                        answers.setdefault("400", {"description": "JSON that is not valid "
                                                   "Unicode (code bad_text)", "content": body})
                        answers.setdefault("413", {"description": "a body past the route's "
                                                   "limit (code body_too_large)",
                                                   "content": body})
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _expire_points(desk: PointsDesk, every_s: float) -> None:
    """Expire points past their date now and then (``vbank points expire`` does it at once).
    The first run waits a little: a server that just started is taking calls, and building
    the desk's queries the first time costs the event loop tens of milliseconds."""
    await asyncio.sleep(min(every_s, EXPIRY_FIRST_DELAY_S))
    while True:
        try:
            await desk.expire()
        except Exception:  # a busy database: next time
            log.warning("points expiry failed; trying again in %.0f s", every_s, exc_info=True)
        await asyncio.sleep(every_s)
