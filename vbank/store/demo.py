"""Demo data for ``--demo``: a few customers, tellers and staff; each password is the name."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vbank.auth import hash_password
from vbank.domain.services import SERVICES
from vbank.store import repo

ALL_SKILLS = list(SERVICES)
DEMO_USERS: list[dict[str, object]] = [
    {"username": "alice", "display_name": "Alice Chen", "role": "customer", "points": 500},
    {"username": "bob", "display_name": "Bob Li", "role": "customer", "tier": "gold",
     "points": 2000},
    {"username": "carol", "display_name": "Carol Wang", "role": "customer", "points": 100},
    {"username": "tina", "display_name": "Tina Zhao", "role": "teller", "skills": ALL_SKILLS},
    {"username": "tom", "display_name": "Tom Sun", "role": "teller", "skills": ALL_SKILLS},
    {"username": "sam", "display_name": "Sam Liu", "role": "supervisor"},
    {"username": "audrey", "display_name": "Audrey Xu", "role": "auditor"},
    {"username": "admin", "display_name": "Administrator", "role": "admin"},
]


async def load_demo(db: AsyncSession) -> int:
    """Create the demo users that do not exist yet; returns how many were added."""
    added = 0
    for spec in DEMO_USERS:
        name = str(spec["username"])
        if await repo.get_user(db, name) is not None:
            continue
        await repo.add_user(db, name, hash_password(name), str(spec["role"]),
                            skills=list(spec.get("skills", [])),  # type: ignore[call-overload]
                            tier=str(spec.get("tier", "standard")),
                            points=int(spec.get("points", 0)),  # type: ignore[call-overload]
                            display_name=str(spec["display_name"]))
        added += 1
    return added
