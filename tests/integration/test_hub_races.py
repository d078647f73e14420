"""Races the hub must lose gracefully: what a customer does while the digital assistant is
being arranged for them. The queue here yields inside ``remove``, as the Redis queue of the
multi-node mode does (a round trip), so the customer's request lands in between."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from vbank.auth import Role
from vbank.branch import Branch
from vbank.cluster.store import LocalQueue
from vbank.config import Settings
from vbank.domain.queue import Ticket
from vbank.domain.services import SERVICES
from vbank.domain.session import Phase
from vbank.rtc.lag import LoopLagMonitor
from vbank.rtc.worker import MediaClient, MediaPool
from vbank.store.db import make_engine, sessionmaker, upgrade


class SlowRemoveQueue(LocalQueue):
    """Removing a ticket waits for ``go``, as a network round trip would."""

    def __init__(self) -> None:
        super().__init__({s.id: s.handle_time_s for s in SERVICES.values()})
        self.removing = asyncio.Event()
        self.go = asyncio.Event()

    async def remove(self, session_id: str) -> Ticket | None:
        self.removing.set()
        await self.go.wait()
        return await super().remove(session_id)


class RoomyPool(MediaPool):
    """Always room for the assistant; no media is exchanged in these tests (the customer
    has not offered any), so no worker runs."""

    def admit(self, session_id: str) -> MediaClient:
        return None  # type: ignore[return-value]  # nothing is placed


class Customer:
    """Carol's signaling connection: what she is sent is kept."""

    def __init__(self) -> None:
        self.username, self.role, self.display_name = "carol", Role.CUSTOMER, "Carol"
        self.tier, self.skills = "standard", list[str]()
        self.got: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.got.append(message)


@pytest.fixture
async def hub(tmp_path: Path) -> Any:
    settings = Settings(data=tmp_path, media_workers=0, digital_human=True)
    await asyncio.to_thread(upgrade, settings.database_url)  # it runs its own loop
    engine = make_engine(settings.database_url)
    queue = SlowRemoveQueue()
    branch = Branch(settings, sessionmaker(engine), RoomyPool(4, 10_000), LoopLagMonitor(),
                    queue)
    yield branch, queue
    await branch.shutdown()
    await engine.dispose()


async def until_removing(queue: SlowRemoveQueue, joining: asyncio.Future[None]) -> None:
    removing: asyncio.Future[Any] = asyncio.ensure_future(queue.removing.wait())
    await asyncio.wait([removing, joining], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert removing.done(), joining.exception() if joining.done() else "join hangs"


async def test_asking_for_a_person_while_the_assistant_is_arranged_keeps_the_place(
        hub: Any) -> None:
    branch, queue = hub
    carol = Customer()
    await branch.connect(carol)
    # nobody at the counters: the assistant is to take her as she joins
    joining = asyncio.ensure_future(branch.join(carol, "general_enquiry", digital_human=True))
    await until_removing(queue, joining)
    await branch.ask_for(carol, "person")  # her request lands during the round trip
    queue.go.set()
    await asyncio.wait_for(joining, 10)  # no SessionRuleBroken
    live = branch.session_of_customer("carol")
    assert live.life.phase is Phase.QUEUED and not live.agent
    assert await queue.position(live.id) == 1, "her ticket was lost"
    assert not [m for m in carol.got if m["type"] == "paired"]


async def test_a_ticket_taken_meanwhile_is_not_also_given_to_the_assistant(hub: Any) -> None:
    branch, queue = hub
    carol = Customer()
    await branch.connect(carol)
    joining = asyncio.ensure_future(branch.join(carol, "general_enquiry", digital_human=True))
    await until_removing(queue, joining)
    live = branch.session_of_customer("carol")
    await LocalQueue.remove(queue, live.id)  # a teller's accept took it in between
    queue.go.set()
    await asyncio.wait_for(joining, 10)
    assert live.life.phase is Phase.QUEUED and not live.agent
    assert not [m for m in carol.got if m["type"] == "paired"]
