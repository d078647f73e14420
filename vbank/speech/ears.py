"""What each person in a call says, as text: captions, consent, and the quality check's input.

A ``LegEar`` hears one leg's incoming audio (Opus, relayed undecoded): ``Listener`` (voice
activity; a pause ends an utterance) → Whisper in a thread (snapped to the phrases the flow
expects at this step when close) → keyphrase spotting of the phrases to watch for (a
teller's forbidden promises) → one ``speech`` event per utterance. The server decides what
it means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import cache

from vbank.media.events import EventSink, Utterance
from vbank.media.relay import Fanout
from vbank.speech import SpeechError
from vbank.speech.asr import KeyphraseSpotter, Recognizer
from vbank.speech.listener import Listener
from vbank.speech.turns import TurnDetector, TurnEnded
from vbank.speech.vad import shared_model
from vbank.speech.whisper import recognizer_for, shared_whisper

log = logging.getLogger(__name__)

#: a pause this long ends an utterance (times are the audio's own, RTP, not arrival: a
#: worker busy for a moment delivers late, which must not look like a pause). Clauses are
#: also listened for by their comma-separated parts, so a reader's pause at a comma is fine.
EAR_END_SILENCE_S = 0.4


@cache
def shared_ear() -> tuple[Recognizer, KeyphraseSpotter]:
    """The process's recognizer and spotter, and the voice activity model every ear's
    ``Listener`` shares (each loads in well under a second)."""
    shared_model()
    return shared_whisper(), KeyphraseSpotter()


class LegEar:
    """Turns one participant's audio into ``speech`` events."""

    def __init__(self, role: str, emit: EventSink,
                 recognizer: Recognizer | None = None,
                 spotter: KeyphraseSpotter | None = None, language: str = "en") -> None:
        self.role = role
        self._emit = emit
        if recognizer is None or spotter is None:
            recognizer, spotter = shared_ear()
        if language != "en":
            # PocketSphinx spots English only: a Chinese session's clauses and forbidden
            # phrases are checked on the transcript (FlowRun.bank_said)
            spotter = None
            try:
                recognizer = recognizer_for(language)
            except SpeechError as exc:
                log.warning("no %s recogniser (%s): heard by the English one", language, exc)
        self.language = language
        self._recognizer = recognizer
        self._spotter = spotter
        self.expect: list[str] = []  # phrases a grammar listens for first
        self.spot: list[str] = []  # phrases searched for in every utterance
        # Captions and the quality check need utterances, not turns to answer: silence
        # alone splits them, at once and the same under any load (a verdict that came late
        # merged a teller's greeting with the first clause after it, and the clause's words
        # fell across two recognition windows), and no model runs at every pause.
        self._listener = Listener(self._on_turn, end_of_turn=None,
                                  detector=TurnDetector(fallback_pause_s=EAR_END_SILENCE_S))
        self._tasks: set[asyncio.Task[None]] = set()

    def listen(self, fanout: Fanout | None) -> None:
        self._listener.listen(fanout)

    def _on_turn(self, turn: TurnEnded, text: str | None) -> None:
        task = asyncio.ensure_future(self._recognize(turn, text, time.time()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recognize(self, turn: TurnEnded, text: str | None, ended_at: float) -> None:
        expect, spot = list(self.expect), list(self.spot)
        try:
            # words transcribed at the pause that ended the turn need no second pass
            heard = await asyncio.to_thread(self._recognizer.recognize, turn.pcm, expect, text)
            # an utterance that is one of the expected phrases (a clause read out) holds
            # nothing else: spotting in it only invites false alarms ("penalty interest")
            spotter = self._spotter
            spotted = [] if heard.phrase is not None or not spot or spotter is None \
                else await asyncio.to_thread(spotter.spot_any, turn.pcm, spot)
        except Exception:
            log.exception("recognizing %s speech failed", self.role)
            return
        log.debug("%s: %.1f s of speech (%s), spotted %s", self.role,
                  turn.ended - turn.started, heard.mode, spotted)  # never the words: PII
        if heard.text or heard.phrase or spotted:
            self._emit(Utterance(self.role, heard.text, ended_at, heard.phrase, list(spotted),
                             round(turn.ended - turn.started, 2)))

    async def stop(self) -> None:
        await self._listener.stop()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
