"""After a crash: close what was left open and register recordings that were never hashed.

A killed server leaves sessions marked queued or in a call, and recording files (readable up
to the crash) with no row and no hash. At start-up, before any call is taken, each such
session is ended with outcome ``interrupted`` and each such file is measured, hashed and
recorded, so auditors find every recording and its hash as for a clean stop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import av
from sqlalchemy.ext.asyncio import async_sessionmaker

from vbank.rtc.recorder import sha256_file
from vbank.store import repo
from vbank.store.models import Recording

log = logging.getLogger(__name__)

PART = re.compile(r"^(customer|teller)-\d+\.webm$")


def measure(path: Path) -> tuple[int, int, float]:
    """Video packets, audio packets and the last timestamp (s) of a possibly cut file."""
    counts = {"video": 0, "audio": 0}
    last = 0.0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.size and packet.stream.type in counts:
                    counts[packet.stream.type] += 1
                    if packet.pts is not None and packet.time_base is not None:
                        last = max(last, float(packet.pts * packet.time_base))
    except (av.FFmpegError, ValueError) as exc:
        log.warning("recording %s is damaged past its start: %s", path, exc)
    return counts["video"], counts["audio"], last


async def recover(sessions: async_sessionmaker, data: Path, node: str = "") -> list[str]:
    """End sessions a crash left open and register their orphaned recordings; returns their
    ids (the caller seals their evidence: what was recorded up to the crash). With several
    nodes, each recovers only the sessions it hosted: the others' are alive."""
    async with sessions.begin() as db:
        open_sessions = await repo.open_sessions(db, node)
        for row in open_sessions:
            known = {r.path for r in await repo.recordings_of(db, row.id)}
            folder = data / "recordings" / row.id
            files = sorted(folder.glob("*.webm")) if folder.is_dir() else []
            for path in files:
                relative = str(path.relative_to(data))
                if not PART.match(path.name) or relative in known:
                    continue
                video, audio, duration = await asyncio.to_thread(measure, path)
                digest, size = await asyncio.to_thread(sha256_file, path)
                started = datetime.fromtimestamp(path.stat().st_mtime - duration, UTC)
                await repo.add_recording(db, Recording(
                    session_id=row.id, role=path.name.split("-")[0], path=relative,
                    sha256=digest, bytes=size, video_frames=video, audio_frames=audio,
                    duration_s=duration, started_at=started))
            row.state, row.outcome, row.ended_at = "ended", "interrupted", repo.utcnow()
            log.warning("session %s was left open by a stop without shutdown: ended as "
                        "interrupted, %d recording part(s) registered", row.id, len(files))
    return [row.id for row in open_sessions]
