"""Voice activity and end of turn: when a caller starts speaking, and when they have finished.

A pure state machine over 20 ms frames, each with the probability that it is speech (from
``vbank.speech.vad``): enough speech opens a turn (``TurnStarted``: the agent stops talking);
a short silence asks whether the turn is finished (``TurnPaused``: the owner runs the
end-of-turn model on the audio, off the event loop, and answers with :meth:`verdict`); a
"finished" verdict ends the turn at once, an "unfinished" one waits for more speech, up to
``max_pause_s`` of silence. No clock, no I/O, no model: times are passed in.

Why not silence alone: people pause to think mid-sentence for 0.5-1 s, longer than anyone
wants to wait after a finished question; only the sound of the speech tells the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vbank.speech.audio import FRAME_SAMPLES, RATE, Pcm

FRAME_S = FRAME_SAMPLES / RATE


@dataclass(frozen=True, slots=True)
class TurnStarted:
    at: float  # time of the first speech frame


@dataclass(frozen=True, slots=True)
class TurnPaused:
    """The caller fell silent: is the turn complete? Answer with ``verdict(seq, ...)``."""

    seq: int  # identifies this pause; a verdict for an older one is ignored
    pcm: Pcm  # the turn so far


@dataclass(frozen=True, slots=True)
class TurnEnded:
    started: float
    ended: float  # time the speech stopped (before the trailing silence)
    pcm: Pcm  # the utterance, with a little audio either side
    reason: str = "complete"  # complete | pause (silence outlasted an unfinished verdict) | long
    #: the last pause asked about, when no speech came after it (its transcript is the turn's)
    seq: int = -1


Event = TurnStarted | TurnPaused | TurnEnded


@dataclass
class TurnDetector:
    """Times are seconds on any clock (the audio's own, preferably)."""

    #: a frame at least this likely to be speech counts as speech
    on: float = 0.5
    #: and one below this as silence (in between, it continues whatever was going on)
    off: float = 0.35
    #: speech frames in a row that open a turn (100 ms: a click or a cough does not)
    start_frames: int = 5
    #: silence after which the end-of-turn model is asked
    stop_s: float = 0.2
    #: silence that ends a turn whatever the model said ("unfinished" is only a guess, and a
    #: customer must never wait in silence for long)
    max_pause_s: float = 1.0
    #: silence that ends a turn when no end-of-turn model runs (no verdicts come)
    fallback_pause_s: float = 0.6
    #: whether an owner answers TurnPaused with verdicts
    judged: bool = True
    #: longest turn; a customer talking on is cut into turns this long
    max_turn_s: float = 15.0
    #: audio kept from before the turn opened (the VAD's onset lags the voice)
    preroll_s: float = 0.3
    _run: int = 0
    _speaking: bool = False
    _started: float = 0.0
    _last_speech: float = 0.0
    _seq: int = 0
    _asked: bool = False  # the model was asked about the current pause
    _unfinished: bool = False  # and said the turn goes on
    _buffer: list[Pcm] = field(default_factory=list)
    _pre: list[Pcm] = field(default_factory=list)

    @property
    def speaking(self) -> bool:
        return self._speaking

    def feed(self, frame: Pcm, at: float, speech: float) -> list[Event]:
        """One 20 ms frame heard at ``at`` with probability ``speech`` that it is speech."""
        if self._speaking:
            return self._during(frame, at, speech)
        self._pre = [*self._pre[-int(self.preroll_s / FRAME_S):], frame]
        self._run = self._run + 1 if speech >= self.on else 0
        if self._run < self.start_frames:
            return []
        self._speaking, self._asked, self._unfinished = True, False, False
        self._started = at - (self.start_frames - 1) * FRAME_S
        self._last_speech = at
        self._buffer, self._pre = list(self._pre), []
        return [TurnStarted(self._started)]

    def _during(self, frame: Pcm, at: float, speech: float) -> list[Event]:
        self._buffer.append(frame)
        if speech >= self.on:
            if self._asked:  # speech again: the pause was no end, whatever was asked
                self._seq += 1
                self._asked = self._unfinished = False
            self._last_speech = at
        silent = at - self._last_speech if speech < self.off else 0.0
        if at - self._started >= self.max_turn_s:
            return [self._close(at, "long")]
        if not self.judged:
            return [self._close(self._last_speech, "pause")] \
                if silent >= self.fallback_pause_s else []
        if silent >= self.max_pause_s:
            return [self._close(self._last_speech, "pause")]
        if silent >= self.stop_s and not self._asked:
            self._asked = True
            self._seq += 1
            return [TurnPaused(self._seq, np.concatenate(self._buffer))]
        return []

    def verdict(self, seq: int, complete: bool) -> list[Event]:
        """The end-of-turn model's answer to ``TurnPaused(seq)``."""
        if not self._speaking or seq != self._seq or not self._asked:
            return []  # the caller spoke again meanwhile, or the turn already ended
        if complete:
            return [self._close(self._last_speech, "complete")]
        self._unfinished = True
        return []

    def _close(self, ended: float, reason: str) -> TurnEnded:
        pcm = np.concatenate(self._buffer) if self._buffer else np.zeros(0, np.int16)
        event = TurnEnded(self._started, ended, pcm, reason,
                          self._seq if self._asked and reason != "long" else -1)
        self.reset()
        return event

    def reset(self) -> None:
        self._speaking, self._run, self._buffer, self._pre = False, 0, [], []
        self._asked = self._unfinished = False
        self._seq += 1
