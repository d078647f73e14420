"""Hearing one caller: relayed Opus → PCM → voice activity → turns, with a learned end of turn.

The one place where a call's incoming audio becomes turns, for the digital human and for
the ears that caption customers and tellers. Frames are decoded and scored on the event
loop (0.1-0.2 ms each). At each short pause a thread asks the end-of-turn model (50-70 ms)
and, when a transcriber is given, transcribes the turn so far (100-200 ms): a pause whose
words end mid-phrase ("ten of", "he might have") is no end whatever the model thinks, and
when the turn does end there, its words are already known (no second recognition: the
customer's answer starts sooner). The verdict comes back to the turn detector unless the
caller spoke again meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from vbank.media.packets import MediaPacket
from vbank.media.relay import Fanout, Item
from vbank.speech import SpeechError
from vbank.speech.endofturn import EndOfTurnModel
from vbank.speech.tracks import OpusDecoderTap
from vbank.speech.turns import Event, TurnDetector, TurnEnded, TurnPaused, TurnStarted
from vbank.speech.vad import VoiceActivity

log = logging.getLogger(__name__)

#: the end-of-turn model's probability above which a pause ends the turn. Smart Turn alone
#: is a poor judge of read speech: of 66 pauses of 0.7 s, one before each word of the five
#: real read sentences (``vbank bench speech``, real_paused_sweep), it ends 36 (silence alone
#: 37); with the words' checks below 18: after words that are a sentence ("He was not.")
#: and after short fragments Whisper mishears ("He invited"). Requiring punctuation of short
#: answers too would make it 12, at the cost of a second's wait after "7 of clubs".
COMPLETE = 0.6
#: a question (Whisper writes "?" when it hears one) needs only this much from the model
QUESTION = 0.3
#: Whisper's punctuation of a finished sentence: ".", "!" or "?" after a word, not "..." or a
#: broken-off word ("r-") and not an abbreviation ("Mr.")
SENTENCE_END = re.compile(r"(?<![.-])[.!?]\s*$")
#: answers this short end on the model's word, punctuated or not
SHORT_WORDS = 3
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "vs", "jr", "sr"})
#: words a finished English sentence does not end with: a pause after one is a thinking
#: pause ("I would like to ... open an account")
DANGLING = frozenset({
    "a", "an", "the", "to", "of", "and", "or", "but", "for", "with", "from", "in", "on", "at",
    "by", "my", "your", "our", "his", "her", "their", "its", "is", "are", "was", "were", "be",
    "been", "have", "has", "had", "will", "would", "can", "could", "should", "must", "than",
    "that", "which", "who", "whose", "if", "unless", "because", "so", "as", "into", "about",
    "like", "i", "he", "she", "we", "they", "might", "may", "shall", "rather", "um", "uh",
    "er"})
Transcriber = Callable[[Any], str]
TurnSink = Callable[[TurnEnded, "str | None"], None]


def sounds_unfinished(text: str) -> bool:
    """Whether a transcript stops mid-phrase (its last word cannot end a sentence)."""
    words = re.findall(r"[a-z']+", text.lower())
    return bool(words) and words[-1] in DANGLING and not text.rstrip().endswith("?")


@cache
def shared_end_of_turn() -> EndOfTurnModel | None:
    """The process's end-of-turn model, or None (turns then end on silence alone)."""
    try:
        return EndOfTurnModel()
    except (SpeechError, OSError) as exc:
        log.warning("no learned end of turn (%s): a turn ends after %.1f s of silence",
                    exc, TurnDetector.fallback_pause_s)
        return None


class Listener:
    """Turns of one audio source; ``on_start`` and ``on_turn`` are called on the loop.

    ``on_turn(turn, text)`` gets the turn's words when they were transcribed at the pause
    that ended it, None otherwise (the owner then recognises the turn itself).
    """

    def __init__(self, on_turn: TurnSink,
                 on_start: Callable[[TurnStarted], None] | None = None,
                 detector: TurnDetector | None = None,
                 end_of_turn: EndOfTurnModel | bool | None = True,
                 transcriber: Transcriber | None = None) -> None:
        self._on_turn = on_turn
        self._transcriber = transcriber
        #: the words of the turn so far, transcribed at its last judged pause
        self._spoken: tuple[int, str] | None = None
        self._on_start = on_start
        #: the model deciding whether a pause ends the turn (None: silence alone decides)
        self.end_of_turn = shared_end_of_turn() if end_of_turn is True else \
            (end_of_turn or None)
        self.turns = detector or TurnDetector()
        self.turns.judged = self.end_of_turn is not None
        self._tap = OpusDecoderTap()
        self._vad = VoiceActivity()
        self._source: Fanout | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def listen(self, fanout: Fanout | None) -> None:
        """Hear this audio source (the caller's current connection)."""
        if fanout is self._source:
            return
        if self._source is not None:
            self._source.unsubscribe(self._on_audio)
        self._source = fanout
        self.turns.reset()
        self._vad.reset()
        if fanout is not None:
            fanout.subscribe(self._on_audio)

    def _on_audio(self, item: Item, _source: int) -> None:
        if not isinstance(item, MediaPacket):
            return
        at = item.pts / item.clock_rate  # media time: immune to delivery hiccups
        for pcm in self._tap.decode(item):
            self._handle(self.turns.feed(pcm, at, self._vad.feed(pcm)))

    def feed_pcm(self, pcm: Any, at: float) -> None:
        """Hear a decoded 20 ms frame directly (tests, benchmarks)."""
        self._handle(self.turns.feed(pcm, at, self._vad.feed(pcm)))

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, TurnStarted):
                if self._on_start is not None:
                    self._on_start(event)
            elif isinstance(event, TurnPaused):
                self._spawn(self._judge(event))
            else:
                spoken = self._spoken
                self._spoken = None
                self._on_turn(event, spoken[1] if spoken and spoken[0] == event.seq else None)

    async def _judge(self, pause: TurnPaused) -> None:
        model = self.end_of_turn
        if model is None:
            return
        # both at once: each releases the GIL, and the verdict waits for the slower one only
        transcriber = self._transcriber
        words = asyncio.to_thread(transcriber, pause.pcm) if transcriber is not None \
            else asyncio.sleep(0, None)
        try:
            p, text = await asyncio.gather(asyncio.to_thread(model.probability, pause.pcm),
                                           words)
        except Exception:
            log.exception("the end-of-turn model failed; the pause decides")
            return
        complete = decide(p, text)
        if text is not None:
            self._spoken = (pause.seq, text)
        self._handle(self.turns.verdict(pause.seq, complete))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        self.listen(None)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)


def judge(pcm: Any, model: EndOfTurnModel,
          transcriber: Transcriber | None) -> tuple[bool, str | None]:
    """Whether the turn in ``pcm`` is complete, and its words when a transcriber is given."""
    text = transcriber(pcm) if transcriber is not None else None
    return decide(model.probability(pcm), text), text


def reads_finished(text: str) -> bool:
    """Whether the words of a turn can end it: Whisper punctuates what it hears and leaves a
    sentence broken off at a pause open ("he might have been", "Unless...", "Unless to be
    r-"). Short answers are exempt from the punctuation ("7 of clubs", "yes": Whisper writes
    a fragment unpunctuated), not from the other checks."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    if not words or sounds_unfinished(text) or words[-1] in ABBREVIATIONS:
        return False
    stripped = text.rstrip()
    if stripped.endswith(("...", "…", "-")):
        return False
    return len(words) <= SHORT_WORDS or SENTENCE_END.search(stripped) is not None


def decide(probability: float, text: str | None) -> bool:
    """A pause ends the turn when it sounds finished (the model) and reads finished (the
    words); a whole question (Whisper hears the rising end and writes "?") needs less of the
    model: a customer's question is the turn to answer most quickly. With no words known,
    the model alone decides. An open turn still ends at ``max_pause_s`` of silence."""
    if text is None:
        return probability >= COMPLETE
    if not reads_finished(text):
        return False
    return probability >= (QUESTION if text.rstrip().endswith("?") else COMPLETE)


def turns_of(pcm: Any, end_of_turn: EndOfTurnModel | None,
             detector: TurnDetector | None = None,
             transcriber: Transcriber | None = None) -> list[TurnEnded]:
    """The turns a listener finds in recorded audio (48 kHz int16), each pause judged at
    once: what a live call does when the model answers within a frame. For tests and
    benchmarks; trailing silence is added so that the last turn can end."""
    import numpy as np

    from vbank.speech.audio import FRAME_SAMPLES, RATE, frames_of

    turns = detector or TurnDetector()
    turns.judged = end_of_turn is not None
    vad = VoiceActivity()
    ended: list[TurnEnded] = []
    tail = np.zeros(int(2 * turns.max_pause_s * RATE), np.int16)
    pending = list(frames_of(np.concatenate([pcm, tail])))
    for i, frame in enumerate(pending):
        events = turns.feed(frame, i * FRAME_SAMPLES / RATE, vad.feed(frame))
        while events:
            event = events.pop(0)
            if isinstance(event, TurnPaused) and end_of_turn is not None:
                complete, _ = judge(event.pcm, end_of_turn, transcriber)
                events += turns.verdict(event.seq, complete)
            elif isinstance(event, TurnEnded):
                ended.append(event)
    return ended
