"""Voice activity and end of turn: when the customer starts and stops speaking.

A pure state machine over 20 ms frames: energy above an adaptive noise floor opens a turn
after a short run of loud frames, and trailing silence closes it. Feed frames with their
time, read back events. No clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vbank.speech.audio import FRAME_SAMPLES, RATE, Pcm, rms_dbfs


@dataclass(frozen=True, slots=True)
class TurnStarted:
    at: float  # time of the first loud frame


@dataclass(frozen=True, slots=True)
class TurnEnded:
    started: float
    ended: float  # time the speech stopped (before the trailing silence)
    pcm: Pcm  # the utterance, with a little padding either side


@dataclass
class TurnDetector:
    """Energy VAD with hysteresis; times are seconds on any clock."""

    #: how far above the noise floor a frame must be to count as speech
    margin_db: float = 12.0
    #: speech quieter than this never counts, whatever the floor
    min_speech_dbfs: float = -50.0
    #: loud frames in a row that open a turn (60 ms: clicks do not)
    start_frames: int = 3
    #: silence that closes a turn. 0.3 s measured p50 435 ms voice-to-voice (0.5 s: 645 ms);
    #: a slow speaker's mid-sentence pause may split a turn (the next step: end early only
    #: when the words so far already match an expected answer, wait longer otherwise)
    end_silence_s: float = 0.3
    #: longest turn; a customer talking on is cut into turns this long
    max_turn_s: float = 15.0
    floor_dbfs: float = -60.0
    _loud_run: int = 0
    _speaking: bool = False
    _started: float = 0.0
    _last_loud: float = 0.0
    _buffer: list[Pcm] = field(default_factory=list)
    _pre: list[Pcm] = field(default_factory=list)

    @property
    def speaking(self) -> bool:
        return self._speaking

    def feed(self, frame: Pcm, at: float) -> list[TurnStarted | TurnEnded]:
        """One 20 ms frame (48 kHz mono int16) heard at time ``at``."""
        level = rms_dbfs(frame)
        loud = level > max(self.floor_dbfs + self.margin_db, self.min_speech_dbfs)
        if not loud and not self._speaking:
            # the floor follows background noise slowly, and drops at once in quiet
            self.floor_dbfs = min(level, 0.95 * self.floor_dbfs + 0.05 * level) \
                if level != float("-inf") else self.floor_dbfs
        events: list[TurnStarted | TurnEnded] = []
        if self._speaking:
            self._buffer.append(frame)
            if loud:
                self._last_loud = at
            too_long = at - self._started >= self.max_turn_s
            if at - self._last_loud >= self.end_silence_s or too_long:
                events.append(self._close(at if too_long else self._last_loud))
            return events
        self._pre = [*self._pre[-(self.start_frames + 5):], frame]
        self._loud_run = self._loud_run + 1 if loud else 0
        if self._loud_run >= self.start_frames:
            self._speaking = True
            self._started = at - (self.start_frames - 1) * FRAME_SAMPLES / RATE
            self._last_loud = at
            self._buffer = list(self._pre)
            events.append(TurnStarted(self._started))
        return events

    def _close(self, ended: float) -> TurnEnded:
        pcm = np.concatenate(self._buffer) if self._buffer else np.zeros(0, np.int16)
        event = TurnEnded(self._started, ended, pcm)
        self._speaking, self._loud_run, self._buffer, self._pre = False, 0, [], []
        return event

    def reset(self) -> None:
        self._speaking, self._loud_run, self._buffer, self._pre = False, 0, [], []
