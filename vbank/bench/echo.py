"""``vbank bench echo``: how much of the digital human's voice the 3D client's echo canceller
keeps out of the customer's microphone, what it costs, and whether the digital human would
still hear itself.

The far side is the digital human (Piper) talking; a simulated room brings it back into the
microphone: the speaker's buffer latency (40 ms), a delay (30-120 ms), a decaying
reverberant impulse response (RT60 0.3 s) at -6 dB, and noise at -65 dBFS. For its last
2.5 s the customer (espeak, another voice) talks over it, then alone. The speaker and the
microphone are fed to :class:`vbank.speech.echo.EchoCanceller` as the client feeds them:
20 ms frames handed to the speaker with jitter, 1024-sample ALSA periods from the
microphone, each stamped by a clock that knows nothing of the room. The ``stall`` runs hold
the far side back for 200 ms at 9 s: the speaker runs dry and plays on later. Figures:

- ``erle_db``: echo return loss enhancement (echo in / residual out) once learnt (from
  ``learnt_after_s`` + 0.5 s, 3 s at least, to the double talk; 3 s after a stall left
  out), with the residual suppressor, and ``erle_filter_only_db`` without it;
- ``measured_delay_ms``: the echo's delay behind the speaker's hand-over as measured (the
  room's delay plus both buffers), ``realigned``: times the reference was moved;
- ``near_double_talk`` / ``near_alone``: the customer's voice in the output (gain of its
  projection, correlation): the canceller must not eat it; ``near_speech_frames_heard``:
  the share of the customer's frames Silero still calls speech;
- ``barge_ins_without_aec`` / ``barge_ins_with_aec``: the times (s) when the digital
  human's hearing (``vbank.speech.vad`` and ``vbank.speech.turns``: Silero VAD, 100 ms of
  speech opens a turn) would hear "the customer" start talking, and stop itself, while only
  the echo is there;
- ``cpu_per_audio_s``: process CPU seconds per second of audio (one core = 1.0).
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vbank.bench.report import report
from vbank.speech.audio import RATE, Pcm, frames_of, resample

FAR_TEXT = ("Welcome to the branch. I am the digital teller, and I can help you with opening "
            "hours, fees, loans and your points. Before we start, please have your identity "
            "card ready. Our loan rates depend on the amount and the term you choose, and "
            "every contract is read to you in full before you sign it. You can ask me to "
            "repeat anything at any time, and a human teller is always one request away.")
NEAR_TEXT = "Excuse me, I would like to ask about the fees for a transfer abroad, please."
#: the customer starts talking this long before the digital human stops
DOUBLE_TALK_S = 2.5
CONVERGED_S = 3.0
#: the speaker's buffer (handed over → heard) and the microphone's (heard → delivered)
SPEAKER_LATENCY_S, MIC_LATENCY_S = 0.04, 0.01
MIC_PERIOD_48K = 1024
#: when the network holds the far side's audio back, in the stall runs
STALL_AT_S = 9.0
#: a frame at least this likely to be speech counts as speech (the turn detector's ``on``)
VAD_ON = 0.5
FRAME_S = 0.02


def room(rate: int, delay_s: float, rng: np.random.Generator, gain_db: float = -6.0,
         rt60_s: float = 0.3, drr_db: float = 0.0) -> NDArray[np.float32]:
    """A delay, a direct path and an exponentially decaying reverberant tail, as loud as
    the direct path (``drr_db``: direct-to-reverberant ratio)."""
    n = round(rate * rt60_s)
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60_s
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail[1:] ** 2))  # reverberant vs direct
    tail[0] = 1.0
    h = np.concatenate([np.zeros(round(rate * delay_s)), tail])
    return (h * np.sqrt(10 ** (gain_db / 10) / np.sum(h ** 2))).astype(np.float32)


@dataclass
class Take:
    """One simulated call: the speaker's reference and what the microphone picked up."""

    far: Pcm  # what the speaker is handed
    mic: Pcm
    echo: NDArray[np.float32]  # the microphone's echo alone
    voice: NDArray[np.float32]  # and the customer's voice alone
    near_at: int  # where the customer starts talking
    far_end: int  # where the digital human stops (in the microphone's time)
    stall: tuple[int, int] | None  # (far sample, samples) the network held back, if it did


def scene(far: Pcm, near: Pcm, rate: int, delay_s: float, seed: int,
          stall_s: float | None = None) -> Take:
    """The room: the speaker plays SPEAKER_LATENCY_S after hand-over; when the network
    stalls for ``stall_s`` (at STALL_AT_S) it runs dry and plays on that much later."""
    rng = np.random.default_rng(seed)
    heard, stall = far, None
    if stall_s is not None:
        at, n = round(STALL_AT_S * rate), round(stall_s * rate)
        stall = (at, n)
        heard = np.concatenate([far[:at], np.zeros(n - round(SPEAKER_LATENCY_S * rate),
                                                   np.int16), far[at:]])
    far_end = len(heard)
    start = far_end - round(DOUBLE_TALK_S * rate)
    length = max(far_end, start + len(near)) + rate
    heard = np.concatenate([heard, np.zeros(length - len(heard), np.int16)])
    echo = np.convolve(heard.astype(np.float32), room(rate, delay_s, rng))[:length]
    echo = np.concatenate([np.zeros(round(SPEAKER_LATENCY_S * rate)), echo])[:length]
    voice = np.zeros(length, np.float32)
    voice[start:start + len(near)] = near
    noise = rng.standard_normal(length).astype(np.float32) * 32768 * 10 ** (-65 / 20)
    mic = np.clip(echo + voice + noise, -32768, 32767).astype(np.int16)
    far = np.concatenate([far, np.zeros(length - len(far), np.int16)])
    return Take(far, mic, echo.astype(np.float32), voice, start, far_end, stall)


def cancel(take: Take, rate: int, suppress: bool, seed: int) -> tuple[Pcm, float, Any]:
    """Feed the canceller in the order and with the stamps a client would: returns the
    output, the CPU seconds it took, and the canceller."""
    from vbank.speech.echo import EchoCanceller

    rng = np.random.default_rng(seed)
    aec = EchoCanceller(rate, suppress=suppress)
    far, mic = take.far, take.mic
    step, period = aec.frame, MIC_PERIOD_48K * rate / RATE
    events: list[tuple[float, int, int, int]] = []  # (time, 0 speaker | 1 mic, start, stop)
    for i in range(0, len(far) - step + 1, step):
        at = (i + step) / rate + rng.uniform(0, 0.008)
        if take.stall is not None and take.stall[0] <= i < sum(take.stall):
            at = sum(take.stall) / rate  # held back, then delivered at once
        events.append((at, 0, i, i + step))
    edges = np.round(np.arange(0, len(mic) + 1, period)).astype(int)
    for a, b in itertools.pairwise(edges):
        events.append((b / rate + MIC_LATENCY_S + rng.uniform(0, 0.005), 1, a, b))
    out: list[Pcm] = []
    cpu = time.process_time()
    for at, side, a, b in sorted(events):
        if side == 0:
            aec.played(far[a:b], at)
        else:
            out.append(aec.captured(mic[a:b], at))
    cpu = time.process_time() - cpu
    clean = np.concatenate(out)[aec.latency:]  # lined up with the microphone again
    return np.concatenate([clean, np.zeros(len(mic) - len(clean), np.int16)]), cpu, aec


FULL_SCALE_DB = 20 * np.log10(32768.0)


def energy_db(x: NDArray[Any]) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9))


def hearing(pcm: Pcm, rate: int) -> tuple[list[float], NDArray[np.float32]]:
    """What the digital human's hearing makes of ``pcm`` (as ``vbank.speech.listener`` hears
    a caller: Silero VAD and the turn detector, on 20 ms frames at 48 kHz): the times it
    would hear the customer start talking (each a barge-in), and each frame's probability
    of speech."""
    from vbank.speech.turns import TurnDetector, TurnStarted
    from vbank.speech.vad import VoiceActivity

    # no end-of-turn model: when a turn starts does not depend on one
    vad, turns = VoiceActivity(), TurnDetector(judged=False)
    starts: list[float] = []
    probability: list[float] = []
    for i, frame in enumerate(frames_of(resample(pcm, rate, RATE))):
        probability.append(vad.feed(frame))
        starts += [round(e.at, 2) for e in turns.feed(frame, i * FRAME_S, probability[-1])
                   if isinstance(e, TurnStarted)]
    return starts, np.array(probability, np.float32)


def measure(far: Pcm, near: Pcm, rate: int, delay_s: float, seed: int,
            stall_s: float | None = None) -> dict[str, Any]:
    far_r, near_r = resample(far, RATE, rate), resample(near, RATE, rate)
    take = scene(far_r, near_r, rate, delay_s, seed, stall_s)
    out, cpu, aec = cancel(take, rate, True, seed)
    bare, _, _ = cancel(take, rate, False, seed)
    b = take.near_at
    settled = np.zeros(len(out), bool)  # echo only, the filter past its first learning
    settled[round(max(CONVERGED_S, (aec.first_learnt_s or 0) + 0.5) * rate):b] = True
    if take.stall is not None:
        settled[take.stall[0]:take.stall[0] + 3 * rate] = False

    def erle(x: Pcm, part: Any) -> float:
        return round(energy_db(take.echo[part]) - energy_db(x[part]), 1)

    def near_kept(part: slice) -> dict[str, float]:
        v, y = take.voice[part].astype(np.float64), out[part].astype(np.float64)
        g = float(np.dot(y, v) / np.dot(v, v))
        return {"gain_db": round(20 * np.log10(max(g, 1e-6)), 1),
                "corr": round(float(np.corrcoef(y, v)[0, 1]), 3)}

    heard_echo, _ = hearing(out[:b], rate)
    heard_raw, _ = hearing(take.mic[:b], rate)
    _, near_speech = hearing(out[b:b + len(near_r)], rate)
    figures = {
        "delay_ms": round(delay_s * 1000),
        "measured_delay_ms": None if aec.delay_s is None else round(aec.delay_s * 1000, 1),
        "realigned": aec.realigned,
        "learnt_after_s": aec.first_learnt_s,
        "erle_db": erle(out, settled),
        "erle_filter_only_db": erle(bare, settled),
        "echo_dbfs": round(energy_db(take.echo[settled]) - FULL_SCALE_DB, 1),
        "residual_dbfs": round(energy_db(out[settled]) - FULL_SCALE_DB, 1),
        "near_double_talk": near_kept(slice(b, take.far_end)),
        "near_alone": near_kept(slice(take.far_end + rate // 2, b + len(near_r))),
        "near_speech_frames_heard": round(float(np.mean(near_speech >= VAD_ON)), 2),
        "barge_ins_without_aec": heard_raw,
        "barge_ins_with_aec": heard_echo,
        "cpu_per_audio_s": round(cpu / (len(take.mic) / rate), 4),
    }
    if take.stall is not None:
        at = sum(take.stall)
        figures["stall_ms"] = round(take.stall[1] / rate * 1000)
        figures["erle_by_second_after_stall_db"] = [
            erle(out, slice(at + i * rate, at + (i + 1) * rate)) for i in range(4)]
    return figures


def main(argv: list[str], json_out: Path | None) -> int:
    parser = argparse.ArgumentParser(prog="vbank bench echo")
    parser.add_argument("--delays", default="30,60,120", help="room delays, ms")
    parser.add_argument("--rates", default="16000,48000", help="canceller rates, Hz")
    parser.add_argument("--stall", type=int, default=200, help="network stall, ms")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from vbank.speech.tts import EspeakSynthesizer, PiperSynthesizer

    far, near = PiperSynthesizer().synthesize(FAR_TEXT), EspeakSynthesizer().synthesize(NEAR_TEXT)
    rates = [int(r) for r in args.rates.split(",")]
    delays = [int(d) for d in args.delays.split(",")]
    runs = {f"{rate // 1000}k_{delay}ms": measure(far, near, rate, delay / 1000, args.seed)
            for rate in rates for delay in delays}
    for rate in rates:  # the network holds the far side back: the speaker runs dry
        runs[f"{rate // 1000}k_60ms_stall"] = measure(far, near, rate, 0.06, args.seed,
                                                      args.stall / 1000)
    report("echo", {"far_s": round(len(far) / RATE, 1), "near_s": round(len(near) / RATE, 1),
                    "runs": runs}, json_out)
    return 0
