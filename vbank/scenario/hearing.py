"""``heard:``: whether a regular expression was said in the audio an actor received.

The audio really travelled (TTS → WebRTC → here), so it is recognised here with our own
ASR, per utterance (audio between pauses), each finished utterance decoded once. The regex
is tried on what was recognised; because a small recogniser misses words, the runner also
looks *for* the words the expectation names: each literal word sequence the regex accepts
may stand in the transcript with up to 40% of its words misrecognised, or be found
by a keyphrase search. Silence or a different sentence still fails. (Spotting with an
embedded JSGF grammar was tried first: exact, but 10-30x slower than real time with its
garbage loop.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import product
from pathlib import Path
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import numpy as np

from vbank.domain.quality import contains
from vbank.speech.asr import KeyphraseSpotter, Recognizer, VoskRecognizer, words_of
from vbank.speech.audio import Pcm, rms_dbfs

#: a frame quieter than this is a pause
QUIET_DBFS = -45.0
#: a pause this long ends an utterance
PAUSE_S = 0.7
GAP = "\x00"  # where the pattern accepts anything: the words on either side are separate


def literal_phrases(pattern: str, limit: int = 24) -> list[list[str]]:
    """The word sequences a regex asks for: each alternative as its literal segments.

    ``(?i)interest rate`` → ``[["interest rate"]]``; ``open (daily|every day)`` → two
    alternatives; ``hours.*nine`` → ``[["hours", "nine"]]`` (a gap between the segments).
    """
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return []
    out: list[list[str]] = []
    for text in _expand(list(parsed), limit):
        segments = [" ".join(words_of(s)) for s in text.split(GAP)]
        segments = [s for s in segments if s]
        if segments and segments not in out:
            out.append(segments)
    return out


def _expand(items: list[tuple[Any, Any]], limit: int) -> list[str]:
    """Every string (wildcards as GAP) a parsed pattern sequence matches, up to ``limit``."""
    results = [""]
    for op, arg in items:
        options = _options(op, arg, limit)
        results = [a + b for a, b in product(results, options)][:limit]
    return results


def _options(op: Any, arg: Any, limit: int) -> list[str]:
    if op is sre_c.LITERAL:
        return [chr(arg)]
    if op is sre_c.IN:
        literals = [chr(v) for kind, v in arg if kind is sre_c.LITERAL]
        if any(kind is sre_c.CATEGORY and v is sre_c.CATEGORY_SPACE for kind, v in arg):
            return [" "]
        return [literals[0]] if literals and len(arg) == len(literals) else [GAP]
    if op is sre_c.BRANCH:
        return [s for branch in arg[1] for s in _expand(list(branch), limit)][:limit]
    if op is sre_c.SUBPATTERN:
        return _expand(list(arg[-1]), limit)
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
        low, high, item = arg
        inner = _expand(list(item), limit)
        if high == 1:
            return [*inner, ""] if low == 0 else inner
        return [GAP] if low == 0 else [s + GAP for s in inner]
    if op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
        return [""]
    return [GAP]  # ANY, NOT_LITERAL, categories, back-references: anything may stand here


def utterances(audio: Iterable[tuple[float, Pcm]]) -> list[tuple[float, float, Pcm]]:
    """Split received frames ``(arrival, pcm)`` at pauses: ``(start, end, pcm)`` each."""
    spans: list[tuple[float, float, list[Pcm]]] = []
    quiet_since: float | None = None
    current: list[Pcm] | None = None
    start = last_loud = 0.0
    for at, pcm in audio:
        loud = pcm.size > 0 and rms_dbfs(pcm) > QUIET_DBFS
        if loud:
            if current is None:
                current, start = [], at
            last_loud, quiet_since = at, None
        elif current is not None:
            quiet_since = quiet_since or at
            if at - quiet_since >= PAUSE_S:
                spans.append((start, last_loud, current))
                current = None
        if current is not None:
            current.append(pcm)
    if current is not None:
        spans.append((start, last_loud, current))
    return [(s, e, np.concatenate(parts)) for s, e, parts in spans]


class Ear:
    """Recognises received audio for ``heard:`` expectations (English: Whisper, as the
    digital human hears; the keyphrase spotter biases toward the words expected).

    ASR holds the GIL for about a fifth of real time; the runner therefore keeps its ear in
    a process of its own (:func:`hears_in_process`) so its WebRTC timing never suffers.
    """

    def __init__(self, language: str = "en", vosk_model: Path | None = None) -> None:
        self.language = language
        self._recognizer: Recognizer
        self._spotter: KeyphraseSpotter | None = None
        if language == "en":
            from vbank.speech.whisper import WhisperRecognizer

            self._recognizer = WhisperRecognizer()  # the digital human's own recogniser
            self._spotter = KeyphraseSpotter()
        elif vosk_model is None:
            raise RuntimeError(
                f"heard: in language {language!r} needs a vosk model of that language; "
                f"set VBANK_VOSK_MODEL to its directory")
        else:
            self._recognizer = VoskRecognizer(vosk_model, language)
        self._cache: dict[tuple[float, int], str] = {}
        self._spotted: dict[tuple[float, int, str], bool] = {}

    def _spot(self, start: float, pcm: Pcm, words: list[str]) -> bool:
        phrase = " ".join(words)
        key = (round(start, 3), pcm.size, phrase)
        if self._spotter is None:
            return False
        if key not in self._spotted:
            self._spotted[key] = self._spotter.spot(pcm, phrase)
        return self._spotted[key]

    def _text(self, start: float, pcm: Pcm) -> str:
        key = (round(start, 3), pcm.size)
        if key not in self._cache:
            self._cache[key] = self._recognizer.recognize(pcm).text
        return self._cache[key]

    def _words(self, text: str) -> list[str]:
        # Chinese has no spaces to trust: compare character by character
        return [c for c in text if not c.isspace()] if self.language == "zh" \
            else words_of(text)

    def hears(self, audio: list[tuple[float, Pcm]], pattern: str, now: float,
              final: bool = False) -> tuple[float | None, list[str]]:
        """``(end of the utterance that matched or None, what was recognised)``.

        Only utterances followed by a pause (quiet audio, or none arriving, until ``now``)
        are decoded, unless ``final`` (the deadline).
        """
        regex = re.compile(pattern)
        alternatives = [[self._words(seg) for seg in segments]
                        for segments in literal_phrases(pattern)]
        texts: list[str] = []
        for start, end, pcm in utterances(audio):
            if not final and now - end < PAUSE_S:
                break  # still being spoken
            text = self._text(start, pcm)
            if self.language == "zh":
                text = text.replace(" ", "")
            texts.append(text)
            if regex.search(text):
                return end, texts
            heard = self._words(text)
            for segments in alternatives:
                if all(contains(heard, seg) or self._spot(start, pcm, seg)
                       for seg in segments):
                    texts[-1] = f"{text} [close to: {' … '.join(map(' '.join, segments))}]"
                    return end, texts
        return None, texts


_EAR: dict[str, Ear] = {}


def hears_in_process(language: str, vosk_model: str | None, audio: list[tuple[float, Pcm]],
                     pattern: str, now: float, final: bool) -> tuple[float | None, list[str]]:
    """:meth:`Ear.hears` with one ear per language kept in the calling (worker) process."""
    if language not in _EAR:
        _EAR[language] = Ear(language, Path(vosk_model) if vosk_model else None)
    return _EAR[language].hears(audio, pattern, now, final)
