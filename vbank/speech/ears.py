"""What each person in a call says, as text: captions, consent, and the quality check's input.

A ``LegEar`` hears one leg's incoming audio (Opus, relayed undecoded): decoder tap → turn
detector → ASR in a thread (a grammar of the phrases the flow expects at this step first,
free decoding otherwise) → keyphrase spotting of the phrases to watch for (a teller's
forbidden promises) → one ``speech`` event per utterance. The server decides what it means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from vbank.rtc.packets import MediaPacket
from vbank.rtc.relay import Fanout, Item
from vbank.speech.asr import KeyphraseSpotter, PocketSphinxRecognizer, Recognizer
from vbank.speech.tracks import OpusDecoderTap
from vbank.speech.turns import TurnDetector, TurnEnded

log = logging.getLogger(__name__)

#: a pause this long ends an utterance. Times are the audio's own (RTP), not arrival times:
#: a worker busy for a moment delivers late, which must not look like a pause. Clauses are
#: also listened for by their comma-separated parts, so a reader's pause at a comma is fine.
EAR_END_SILENCE_S = 0.4
EventSink = Callable[[dict[str, Any]], None]


@cache
def shared_ear() -> tuple[Recognizer, KeyphraseSpotter]:
    """The process's recognizer and spotter (PocketSphinx loads in well under a second)."""
    return PocketSphinxRecognizer(), KeyphraseSpotter()


class LegEar:
    """Turns one participant's audio into ``speech`` events."""

    def __init__(self, role: str, emit: EventSink,
                 recognizer: Recognizer | None = None,
                 spotter: KeyphraseSpotter | None = None) -> None:
        self.role = role
        self._emit = emit
        if recognizer is None or spotter is None:
            recognizer, spotter = shared_ear()
        self._recognizer = recognizer
        self._spotter = spotter
        self.expect: list[str] = []  # phrases a grammar listens for first
        self.spot: list[str] = []  # phrases searched for in every utterance
        self._tap = OpusDecoderTap()
        self._turns = TurnDetector(end_silence_s=EAR_END_SILENCE_S)
        self._source: Fanout | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def listen(self, fanout: Fanout | None) -> None:
        if fanout is self._source:
            return
        if self._source is not None:
            self._source.unsubscribe(self._on_audio)
        self._source = fanout
        self._turns.reset()
        if fanout is not None:
            fanout.subscribe(self._on_audio)

    def _on_audio(self, item: Item, _source: int) -> None:
        if not isinstance(item, MediaPacket):
            return
        for pcm in self._tap.decode(item):
            at = item.pts / item.clock_rate  # media time: immune to delivery hiccups
            for event in self._turns.feed(pcm, at):
                if isinstance(event, TurnEnded):
                    task = asyncio.ensure_future(self._recognize(event, time.time()))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _recognize(self, turn: TurnEnded, ended_at: float) -> None:
        expect, spot = list(self.expect), list(self.spot)
        try:
            heard = await asyncio.to_thread(self._recognizer.recognize, turn.pcm, expect)
            # an utterance that is one of the expected phrases (a clause read out) holds
            # nothing else: spotting in it only invites false alarms ("penalty interest")
            spotted = [] if heard.mode == "grammar" or not spot else await asyncio.to_thread(
                self._spotter.spot_any, turn.pcm, spot)
        except Exception:
            log.exception("recognizing %s speech failed", self.role)
            return
        log.debug("%s: %.1f s of speech (%s), spotted %s", self.role,
                  turn.ended - turn.started, heard.mode, spotted)  # never the words: PII
        if heard.text or heard.phrase or spotted:
            self._emit({"event": "speech", "role": self.role, "text": heard.text,
                        "phrase": heard.phrase, "spotted": spotted,
                        "duration_s": round(turn.ended - turn.started, 2), "at": ended_at})

    async def stop(self) -> None:
        self.listen(None)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
