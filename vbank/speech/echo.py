"""Acoustic echo cancellation: a caller's microphone without the far side's voice in it.

A customer on loudspeakers hears the digital human, and so does their microphone. Sent back,
that echo is "the customer talking" to the digital human's voice-activity detector, and it
stops itself mid-sentence (barge-in). :class:`EchoCanceller` is fed what the speaker was
handed and what the microphone delivered, each stamped with the time it was handed over,
and returns the microphone's audio with the echo taken out.

The engine is libspeexdsp (``vbank.speech.speex``): its adaptive filter learns the echo path,
and its preprocessor suppresses what echo the filter leaves. Speex's buffered API
(``speex_echo_playback``/``speex_echo_capture``) tolerates two frames of jitter between
the two sides and writes a warning to stderr beyond that; a client hands the speaker its
frames on the network loop and reads the microphone on PyAV's thread, through buffers of
unknown depth. So the two sides are joined here: the speaker's samples and the microphone's
samples are two timelines, tied by an offset taken from the clock and then corrected by
measuring the echo's delay (a phase-transform cross-correlation) whenever the far side talks.

The filter needs two or three seconds of the far side's speech to learn a room. Until its
output is seen to stay well below the speaker's level, the output is turned down while the
speaker talks (half duplex): the digital human's greeting must not interrupt itself while
the filter is still learning. The same happens after the speaker's audio paused (its buffer
may have run dry, and the echo moved).

No clock and no I/O of its own: times are passed in, so a test can replay any timing.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

from vbank.speech.audio import Pcm
from vbank.speech.speex import SpeexEcho

#: the rate the canceller runs at: the speech band, and the better of the two measured
#: (``vbank bench echo``: at 48 kHz the filter needs three times the taps for the same
#: tail, converges more slowly and removes less)
AEC_RATE = 16000
#: one frame: 20 ms, as WebRTC's
FRAME_S = 0.02
#: how much of the room's echo the filter models, from the start of its reference window
TAIL_S = 0.25
#: where the echo's onset is put inside that window: late enough that timing jitter never
#: moves it before the window (the filter cannot model an echo that precedes its reference)
LEAD_S = 0.03
#: the reference is taken this long before where the clock says the speaker is, so that a
#: frame the network delivered a little late is already there when it is needed
MARGIN_S = 0.02
#: speaker audio kept for alignment and delay measurement
HISTORY_S = 2.0
#: how far the clock may disagree with the sample counts before the timelines are re-tied
#: (a late burst from the network moves the clock's guess by the stall; the delay
#: measurement, not the clock, follows such moves)
DRIFT_S = 0.3
#: a pause longer than this in what the speaker is handed may have let it run dry
GAP_S = 0.08
#: delay measurement: microphone audio correlated, the longest delay looked for, how often
MEASURE_S, MAX_DELAY_S, MEASURE_EVERY_S = 0.5, 0.6, 0.25
#: how far before the reference an echo may be found (a clock tie that came out late)
MAX_EARLY_S = 0.1
#: a correlation peak this many standard deviations above the rest is a measurement
CONFIDENT = 8.0
#: speaker audio quieter than this (dBFS) carries no echo worth measuring
FAR_ACTIVE_DBFS = -45.0
#: the echo path counts as learnt once the output, while the speaker talks, stays this far
#: (dB) below the speaker's reference ...
LEARNT_LOSS_DB = 30.0
#: ... for this long
LEARNT_S = 0.5
#: until then, while the speaker talks, the output is turned down this much (dB): the first
#: seconds of a call are half duplex, so the raw echo of the greeting never reaches the far
#: side's voice detector ...
UNLEARNT_DUCK_DB = 40.0
#: ... but never for more than this much of the speaker talking (a noisy room may keep the
#: loss short of LEARNT_LOSS_DB for good; at 16 kHz the filter learns in 2.5-3.5 s)
UNLEARNT_LIMIT_S = 6.0


class EchoCanceller:
    """One microphone and the speaker beside it. ``played`` and ``captured`` take mono int16
    at ``rate`` in pieces of any size; ``captured`` returns whole frames of clean audio."""

    def __init__(self, rate: int = AEC_RATE, *, tail_s: float = TAIL_S,
                 suppress: bool = True) -> None:
        self.rate = rate
        self.frame = round(rate * FRAME_S)
        self.engine = SpeexEcho(rate, self.frame, round(rate * tail_s), suppress)
        #: samples the output lags the microphone: the suppressor's overlap-add, one frame
        self.latency = self.frame if suppress else 0
        self._tail = round(rate * tail_s)
        self._lead = round(rate * LEAD_S)
        self._margin = round(rate * MARGIN_S)
        # the speaker's timeline: a ring of samples by absolute index, and when the newest
        # one was handed over
        self._far = np.zeros(round(rate * HISTORY_S), np.int16)
        self._far_end = 0  # index of the next sample the speaker will be handed
        self._far_at: float | None = None
        # the microphone's timeline: samples waiting to make a frame, the recent ones kept
        # for measuring the delay, and the index after the last one delivered
        self._pending = np.zeros(0, np.int16)
        self._recent = np.zeros(round(rate * MEASURE_S), np.int16)
        self._near_end = 0
        #: the speaker sample that is the reference for microphone sample n is n + offset
        self._offset: int | None = None
        #: what is added to the offset the clock alone gives: at first the margin (the echo
        #: cannot come before the speaker was handed its sound), then what was measured
        self._correction = -self._margin
        self._candidate: int | None = None  # a first measurement, awaiting a second
        self._since_measure = 0
        #: the echo's measured delay behind the speaker's hand-over (seconds), once heard
        self.delay_s: float | None = None
        self.realigned = 0  # times the timelines were re-tied (each restarts the learning)
        # the learning: the reference's recent frame energies (as long as an echo may last
        # before the delay is measured), the smoothed energies of reference and output
        # while it talks, and for how long
        self._far_energy: deque[float] = deque(
            maxlen=round((tail_s + MAX_DELAY_S) / FRAME_S))
        self._smoothed = np.zeros(2)
        self._loss_run = 0
        self._unlearnt_frames = 0
        #: whether the filter has learnt the echo path (the output is no longer ducked)
        self.learnt = False
        #: seconds of microphone audio it took to learn the echo path the first time
        self.first_learnt_s: float | None = None

    # ------------------------------------------------------------------ the speaker
    def played(self, pcm: Pcm, at: float) -> None:
        """The speaker was handed ``pcm`` at ``at`` (its last sample, by then)."""
        if self._far_at is not None and at - self._far_at > GAP_S + len(pcm) / self.rate:
            # A pause in what it is handed. Its samples stay one timeline: the speaker's
            # buffer may have covered the pause (then nothing moved), or it ran dry and the
            # echo now comes later by an unknown amount; the delay measurement finds out,
            # and until the output is seen to be echo-free again it is turned down.
            self._unlearn()
        self._append_far(np.asarray(pcm, np.int16))
        self._far_at = at

    def _append_far(self, pcm: Pcm) -> None:
        pcm = pcm[-len(self._far):]
        index = (self._far_end + np.arange(len(pcm))) % len(self._far)
        self._far[index] = pcm
        self._far_end += len(pcm)

    def _far_slice(self, start: int, stop: int) -> Pcm:
        """Speaker samples [start, stop), silence where none were (or are still) kept."""
        out = np.zeros(stop - start, np.int16)
        lo, hi = max(start, self._far_end - len(self._far)), min(stop, self._far_end)
        if lo < hi:
            out[lo - start:hi - start] = self._far[np.arange(lo, hi) % len(self._far)]
        return out

    # ------------------------------------------------------------------ the microphone
    def captured(self, pcm: Pcm, at: float) -> Pcm:
        """The microphone delivered ``pcm`` at ``at``: the echo-free audio of every frame it
        completes (empty when it completes none)."""
        self._pending = np.concatenate([self._pending, np.asarray(pcm, np.int16)])
        self._near_end += len(pcm)
        count = len(self._pending) // self.frame
        if count == 0:
            return np.zeros(0, np.int16)
        out = []
        for i in range(count):
            end = self._near_end - len(self._pending) + (i + 1) * self.frame
            out.append(self._frame(self._pending[i * self.frame:(i + 1) * self.frame],
                                   end, at - (self._near_end - end) / self.rate))
        self._pending = self._pending[count * self.frame:]
        return np.concatenate(out)

    def _frame(self, near: Pcm, end: int, at: float) -> Pcm:
        self._recent = np.concatenate([self._recent[len(near):], near])
        if self._far_at is None:  # nothing played yet: nothing to cancel
            return self.engine.cancel(near, np.zeros(self.frame, np.int16))
        self._tie(end, at)
        assert self._offset is not None
        self._since_measure += len(near)
        if self._since_measure >= MEASURE_EVERY_S * self.rate:
            self._since_measure = 0
            self._measure(end)
        far = self._far_slice(end + self._offset - self.frame, end + self._offset)
        out = self.engine.cancel(near, far)
        return out if self._learning(far, out, end) else \
            (out * 10 ** (-UNLEARNT_DUCK_DB / 20)).astype(np.int16)

    def _learning(self, far: Pcm, out: Pcm, end: int) -> bool:
        """Whether ``out`` may go out as it is: yes once the echo path is learnt, and
        whenever the speaker is quiet."""
        self._far_energy.append(_energy(far))
        if self.learnt:
            return True
        if max(self._far_energy) < _energy_at(FAR_ACTIVE_DBFS):
            return True  # no echo to let through
        self._smoothed = 0.8 * self._smoothed + 0.2 * np.array([_energy(far), _energy(out)])
        loud_enough = self._smoothed[0] > 10 ** (LEARNT_LOSS_DB / 10) * self._smoothed[1]
        self._loss_run = self._loss_run + 1 if loud_enough else 0
        self._unlearnt_frames += 1
        if self._loss_run * FRAME_S >= LEARNT_S or \
                self._unlearnt_frames * FRAME_S >= UNLEARNT_LIMIT_S:
            self.learnt, self._unlearnt_frames = True, 0
            if self.first_learnt_s is None:
                self.first_learnt_s = end / self.rate
        return self.learnt

    def _tie(self, end: int, at: float) -> None:
        """Tie the timelines by the clock when untied or when the clock says they slipped."""
        assert self._far_at is not None
        clocked = self._far_end + round((at - self._far_at) * self.rate) - end
        if self._offset is None:
            self._offset = clocked + self._correction
        elif abs(clocked + self._correction - self._offset) > DRIFT_S * self.rate:
            self._move(clocked + self._correction)

    def _move(self, offset: int) -> None:
        """Re-tie the timelines: the echo path moved, learn it again."""
        self._offset = offset
        self.engine.reset()
        self.realigned += 1
        self._unlearn()

    def _unlearn(self) -> None:
        """Duck the output while the speaker talks until the echo path is learnt again."""
        self.learnt, self._loss_run = False, 0

    def _measure(self, end: int) -> None:
        """Find the echo in the recent microphone audio; move the reference when the echo
        is not where the filter can model it."""
        assert self._offset is not None
        longest, early = round(MAX_DELAY_S * self.rate), round(MAX_EARLY_S * self.rate)
        near = self._recent
        start = end - len(near) + self._offset - longest
        far = self._far_slice(start, end + self._offset + early)
        if _dbfs(far) < FAR_ACTIVE_DBFS or _dbfs(near) < FAR_ACTIVE_DBFS - 20:
            return
        lag = _echo_lag(near, far)
        if lag is None:
            self._candidate = None
            return
        delay = longest - lag  # samples the echo comes after the reference
        if self._candidate is None or abs(delay - self._candidate) > self.rate // 500:
            self._candidate = delay  # one peak may be chance: believe two in a row
            return
        self._candidate = None
        # the reference is the clock's guess plus the correction: the echo's delay behind
        # the speaker's hand-over is the measured delay less the correction
        self.delay_s = (delay - self._correction) / self.rate
        if self._lead // 2 <= delay <= self._tail // 2 and \
                (self.learnt or abs(delay - self._lead) <= self.rate // 100):
            return  # where the filter can learn it (while it learns, the nearer the faster)
        # move the echo to the lead, but never ask for what the speaker has not had yet
        correction = min(self._correction - (delay - self._lead), -self._margin)
        if correction != self._correction:
            self._move(self._offset + correction - self._correction)
            self._correction = correction


def _energy(pcm: Pcm) -> float:
    return float(np.mean(np.square(pcm, dtype=np.float32))) if len(pcm) else 0.0


def _energy_at(dbfs: float) -> float:
    return float(32768.0 ** 2 * 10 ** (dbfs / 10))


def _dbfs(pcm: NDArray[np.int16]) -> float:
    rms = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2))) if len(pcm) else 0.0
    return 20 * np.log10(rms / 32768.0) if rms > 0 else float("-inf")


def _echo_lag(near: Pcm, far: Pcm) -> int | None:
    """Where ``near`` best matches inside ``far`` (index into ``far``), if clearly anywhere.

    Generalised cross-correlation with the phase transform: whitening both spectra makes
    the direct path a sharp peak, whatever the voice's own colour and the room's echoes.
    """
    n = 1 << int(np.ceil(np.log2(len(near) + len(far))))
    spectrum = np.conj(np.fft.rfft(near.astype(np.float32), n)) * \
        np.fft.rfft(far.astype(np.float32), n)
    spectrum /= np.abs(spectrum) + 1e-6 * float(np.abs(spectrum).max() or 1.0)
    score = np.fft.irfft(spectrum, n)[:len(far) - len(near) + 1]
    best = int(np.argmax(score))
    spread = float(np.std(score)) or 1.0
    return best if score[best] / spread >= CONFIDENT else None
