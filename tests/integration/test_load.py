"""Two hundred customers queue over real WebSockets at once and twenty tellers serve them:
every ticket is served once, none is lost, none goes to two tellers (``vbank bench queue
--ws`` measures the latency of the same run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vbank.bench.queue_ws import LOAD_ENV, run_load
from vbank.serverproc import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("load") / "data", env=LOAD_ENV)
    yield proc
    proc.stop()


async def test_200_customers_and_20_tellers_every_ticket_served_exactly_once(
        server: ServerProcess) -> None:
    result = await run_load(server.url, customers=200, tellers=20, handle_s=0.05)
    assert result.errors == []
    assert result.lost == 0 and len(result.paired_customers) == 200
    assert result.twice == 0 and set(result.paired_customers.values()) == {1}
    assert len(result.sessions_by_teller) == 200  # 200 sessions, each with one teller
    assert len(set(result.sessions_by_teller.values())) > 1  # the tellers shared the work
    assert len(result.latencies_s) == 200
