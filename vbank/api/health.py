"""``/health`` for load balancers and ``/metrics`` (Prometheus text) for operators."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vbank.branch import Branch

router = APIRouter(tags=["operations"])


class BranchCollector(Collector):
    """Reads the live branch at scrape time; nothing is counted twice or left stale."""

    def __init__(self, branch: Branch) -> None:
        self.branch = branch

    def collect(self) -> Iterator[Metric]:
        b = self.branch
        queue = GaugeMetricFamily("vbank_queue_length", "customers waiting", labels=["service"])
        for row in b.board.summary:  # as last read: a scrape does not wait for Redis
            queue.add_metric([row["id"]], row["length"])
        yield queue
        sessions = GaugeMetricFamily("vbank_active_sessions", "sessions by state",
                                     labels=["state"])
        for state in ("queued", "in_call"):
            sessions.add_metric([state], sum(1 for s in b.live.values() if s.state == state))
        yield sessions
        yield GaugeMetricFamily("vbank_unsealed_sessions",
                                "ended calls whose evidence failed to seal (being retried): "
                                "alert on any", value=len(b.sealer.unsealed))
        yield CounterMetricFamily("vbank_seal_failures", "failed attempts to seal a call's "
                                  "evidence", value=b.sealer.failures)
        yield GaugeMetricFamily("vbank_connected_users", "signed-in WebSocket connections",
                                value=len(b.connections))
        yield from b.waits.collect()
        lag = GaugeMetricFamily("vbank_event_loop_lag_seconds",
                                "p95 event-loop lag", labels=["process"])
        lag.add_metric(["server"], b.lag.p95_ms / 1000)
        for client in b.media.clients:
            lag.add_metric([f"media-{client.name}"], client.lag_p95_ms / 1000)
        yield lag
        media = GaugeMetricFamily("vbank_media_sessions", "sessions per media worker",
                                  labels=["worker"])
        for client in b.media.clients:
            media.add_metric([client.name], client.sessions)
        yield media


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "metrics are served on loopback only")
    registry = CollectorRegistry()
    registry.register(BranchCollector(request.app.state.branch))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
