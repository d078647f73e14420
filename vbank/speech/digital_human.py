"""The digital human as a participant of a call: it hears, understands, answers and shows a face.

Customer audio (Opus, relayed undecoded) → ``Listener`` (Silero voice activity, a learned end
of turn) → Whisper (the words; in a flow, which of the step's answers they are) → intent →
``Conversation`` → TTS clause by clause → ``SpeechTrack``; ``AvatarTrack`` moves the mouth
with the audio actually leaving. When the customer starts speaking, queued speech is
dropped (barge-in). Models are loaded once per process (``SpeechModels``) and shared by
every session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from vbank.avatar.face import FaceSprites
from vbank.avatar.track import AvatarTrack
from vbank.media.events import (
    AgentEnd,
    BargeIn,
    Caption,
    EventSink,
    HandingOver,
    Interrupted,
    Said,
    ServiceRequested,
    Utterance,
)
from vbank.media.relay import Fanout
from vbank.speech import SpeechError
from vbank.speech.agent import (
    LINES,
    Action,
    Conversation,
    Faq,
    HandOver,
    Heard,
    Say,
    Silence,
    StartService,
)
from vbank.speech.asr import Recognition, Recognizer, VoskRecognizer
from vbank.speech.audio import RATE
from vbank.speech.intents import IntentMatcher, matchers
from vbank.speech.listener import Listener, shared_end_of_turn
from vbank.speech.tracks import SpeechTrack, drain
from vbank.speech.tts import (
    CachedSynthesizer,
    EspeakSynthesizer,
    PiperSynthesizer,
    Synthesizer,
    split_clauses,
)
from vbank.speech.turns import TurnEnded, TurnStarted
from vbank.speech.whisper import shared_whisper, shared_whisper_zh

log = logging.getLogger(__name__)

FAQ_PATH = Path(__file__).resolve().parents[2] / "scenes" / "faq.yaml"
#: the longest the digital human waits for a recognition before it asks to hear it again
RECOGNITION_TIMEOUT_S = 3.0
#: Chinese examples this short are also listened for as commands
COMMAND_CHARS = 4


class SpeechModels:
    """Every model the digital human uses, loaded once per process."""

    def __init__(self, faq_path: Path = FAQ_PATH, vosk_model: Path | None = None) -> None:
        started = time.monotonic()
        self.faq = Faq.load(faq_path)
        self.voices: dict[str, Synthesizer] = {
            "en": CachedSynthesizer(PiperSynthesizer()),
            "zh": CachedSynthesizer(EspeakSynthesizer("zh"))}
        self.ears: dict[str, Recognizer] = {"en": shared_whisper()}
        if vosk_model is not None:
            vosk = VoskRecognizer(vosk_model, os.environ.get("VBANK_VOSK_LANG", "zh"))
            self.ears[vosk.language] = vosk
        if "zh" not in self.ears:  # Chinese sessions: step answers scored by Whisper base
            try:
                self.ears["zh"] = shared_whisper_zh()
            except SpeechError as exc:
                log.warning("no Chinese recogniser (%s): Chinese sessions are heard by the "
                            "English one", exc)
        #: per session language
        self.intents: dict[str, IntentMatcher] = matchers(self.faq.examples_in)
        #: short requests a session in a language without a free-speech recogniser here is
        #: heard by (scored against the audio): 转人工, 再见, 我要挂失 ... and their intents
        self.commands: dict[str, dict[str, str]] = {
            "zh": {e: intent for intent, texts in self.faq.examples_zh.items()
                   for e in texts if len(e) <= COMMAND_CHARS}}
        self.sprites = FaceSprites(320, 240)
        self.voices["en"].synthesize("Ready.")  # warm the voice: the first call is slow
        # warm the hearing too: the first Whisper window and end-of-turn call are slow
        self.ears["en"].recognize(np.zeros(RATE // 2, np.int16))
        turn_model = shared_end_of_turn()
        if turn_model is not None:
            turn_model.probability(np.zeros(RATE // 2, np.int16))
        self.load_s = time.monotonic() - started
        # What it says most (the FAQ's answers, its own fixed lines) is synthesized once, in
        # the background: a first answer then starts as fast as a repeated one (Piper takes
        # 150-300 ms for a first clause, the cache nothing).
        threading.Thread(target=self._warm_voice, name="warm-voice", daemon=True).start()

    def _warm_voice(self) -> None:
        texts = [a["en"] for a in self.faq.answers.values() if a.get("en", "").isascii()]
        texts += [line["en"] for line in LINES.values() if "{" not in line["en"]]
        voice = self.voices["en"]
        try:
            for text in texts:
                for clause in split_clauses(text):
                    if not clause.isupper():  # QUEUE_STATUS and the like are no speech
                        voice.synthesize(clause)
        except Exception:
            log.exception("warming the voice failed (answers are synthesized when said)")


class DigitalHuman:
    """One session's digital human.

    Free (FAQ) conversations decide here what to say. In a business flow (``scripted``) the
    server's flow decides: it sends lines with :meth:`say` and the phrases to listen for with
    ``expect``; every customer utterance goes back as a ``speech`` event, and every line
    heard out to its end as ``said`` (a disclosure counts only when read in full).
    """

    def __init__(self, models: SpeechModels, language: str, emit: EventSink,
                 scripted: bool = False) -> None:
        self.models = models
        self.scripted = scripted
        #: lines the server asked for, not yet spoken: (text, key); None ends the call
        self._script: list[tuple[str, str] | None] = []
        #: phrases a grammar listens for first (the flow's expected answers at this step)
        self.expect: list[str] = []
        self.language = language if language in models.voices else "en"
        self._emit = emit
        self.audio = SpeechTrack()
        self.video = AvatarTrack(models.sprites, lambda: self.audio.level)
        self.audio.on_started = self._clause_started
        self.conversation = Conversation(models.faq, self.language)
        #: the recogniser the listener transcribes with at pauses (English: Whisper)
        self.hearing_model = models.ears["en"]
        whisper = self.hearing_model
        transcriber = (lambda pcm: whisper.recognize(pcm).text) \
            if self.language == "en" else None
        self.hearing = Listener(self._turn_ended, self._turn_started, transcriber=transcriber)
        self._speaking: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- hearing
    def listen(self, fanout: Fanout | None) -> None:
        """Hear this audio source (the customer's current connection)."""
        self.hearing.listen(fanout)

    def _turn_started(self, _event: TurnStarted) -> None:
        self._barge_in()

    def _turn_ended(self, turn: TurnEnded, text: str | None) -> None:
        self._spawn(self._understand(turn, text))

    def _barge_in(self) -> None:
        dropped = self.audio.flush()
        if self.scripted and self._script:
            self._emit(Interrupted([i[1] for i in self._script if i]))
            self._script = [i for i in self._script if i is None]  # an ending still ends
        if self._speaking is not None and not self._speaking.done():
            self._speaking.cancel()
        if dropped:
            self._emit(BargeIn(dropped * 0.02))

    async def _recognize(self, turn: TurnEnded, text: str | None,
                         expected: list[str]) -> Recognition:
        """What the customer said (``text``: already transcribed at the pause that ended the
        turn); nothing (so "say that again") when the recogniser fails or is too slow: a
        customer never waits in silence."""
        ear = self.models.ears.get(self.language, self.models.ears["en"])
        heard = text if ear is self.hearing_model else None
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(ear.recognize, turn.pcm, expected, heard),
                RECOGNITION_TIMEOUT_S)
        except Exception as exc:  # a timeout too: the thread finishes, bounded, unheard
            log.warning("recognition of %.1f s of speech failed: %r",
                        turn.ended - turn.started, exc)
            return Recognition("", None, "failed")

    async def _understand(self, turn: TurnEnded, text: str | None = None) -> None:
        if self.scripted:
            heard = await self._recognize(turn, text, list(self.expect))
            if heard.text or heard.phrase:
                self._emit(Utterance("customer", heard.text, time.time(), heard.phrase))
            return
        # free questions: the intent model reads the words themselves (snapping them to the
        # FAQ's examples, or scoring those against the audio, would force off-script speech
        # onto some example)
        commands = self.models.commands.get(self.language, {})
        heard = await self._recognize(turn, text, list(commands))
        text = heard.phrase or heard.text
        if text:
            scored = heard.phrase in commands
            # a scored request is shown as the words it is: the transcript of a Chinese
            # command is often other characters of about the same sound
            self._emit(Caption("customer", str(heard.phrase) if scored else heard.text or text))
            if scored:  # a short request the recogniser scored
                intent: str | None = commands[str(heard.phrase)]
            else:
                intents = self.models.intents.get(self.language, self.models.intents["en"])
                intent = (await asyncio.to_thread(intents.match, text)).intent
            actions = self.conversation.hear(Heard(text, intent))
        else:
            actions = self.conversation.hear(Silence())
        self._act(actions)

    # --------------------------------------------------------------- speaking
    def start(self) -> None:
        if not self.scripted:
            self._act(self.conversation.start())

    def say(self, lines: list[tuple[str, str]], end: bool = False,
            replace: bool = False) -> None:
        """Speak the server's lines after those already queued (or instead of them and of
        what is playing, with ``replace``); then end the call if asked."""
        if replace and (self._script or self.audio.playing):
            self.audio.flush()
            self._script = []
            if self._speaking is not None and not self._speaking.done():
                self._speaking.cancel()
            self._speaking = None
        self._script += lines
        if end:
            self._script.append(None)
        if self._speaking is None or self._speaking.done():
            self._speaking = self._spawn(self._speak_script())

    async def _speak_script(self) -> None:
        voice = self.models.voices[self.language]
        while self._script:
            item = self._script.pop(0)
            if item is None:
                await drain(self.audio)
                self._emit(AgentEnd("flow_complete"))
                return
            text, key = item
            for clause in split_clauses(text):
                pcm = await asyncio.to_thread(voice.synthesize, clause)
                self.audio.play(pcm, tag=clause)
            await drain(self.audio)
            self._emit(Said(text, key, time.time()))

    def _act(self, actions: list[Action]) -> None:
        self._speaking = self._spawn(self._perform(actions))

    async def _perform(self, actions: list[Action]) -> None:
        voice = self.models.voices[self.language]
        for action in actions:
            if isinstance(action, Say):
                for clause in split_clauses(action.text):
                    pcm = await asyncio.to_thread(voice.synthesize, clause)
                    self.audio.play(pcm, tag=clause)
            elif isinstance(action, StartService):
                await drain(self.audio)  # the customer hears what happens next first
                self._emit(ServiceRequested(action.service))
            else:
                await drain(self.audio)  # let the customer hear the goodbye first
                reason = getattr(action, "reason", "")
                self._emit(HandingOver(reason) if isinstance(action, HandOver)
                           else AgentEnd(reason))

    def _clause_started(self, tag: object, at: float) -> None:
        self._emit(Caption("digital_human", str(tag), at))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    async def stop(self) -> None:
        await self.hearing.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.audio.stop()
        self.video.stop()


def _log_failure(task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        if task.exception() is not None:
            log.error("digital human task failed", exc_info=task.exception())
