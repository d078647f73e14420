"""In-call quality inspection (实时质检): what the bank's side said, against the flow's rules.

Pure text logic. Speech arrives as words (from the digital human's script, or from ASR of a
teller, which mishears some words): a forbidden phrase anywhere raises an alert, and a
disclosure counts as read when its words were heard in order with a few misheard.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z']+|\d+|[\u4e00-\u9fff]")
#: share of a disclosure's words that may be misheard (or left out) and it still counts as read
DISCLOSURE_TOLERANCE = 0.3
#: the same for a forbidden phrase: words misheard by ASR do not excuse a promise
FORBIDDEN_TOLERANCE = 0.25


def words_of(text: str) -> list[str]:
    """Lower-case English words and single Chinese characters, punctuation dropped."""
    return WORD.findall(text.lower())


def word_distance(a: list[str], b: list[str]) -> int:
    """Edit distance over words."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def contains(heard: list[str], phrase: list[str], tolerance: float = 0.4) -> bool:
    """Whether ``phrase`` stands in ``heard`` allowing a few misrecognised words: some
    window of ``heard`` is within ``tolerance`` of the phrase's length (edits over words).
    A one-word phrase must be heard exactly; silence contains nothing."""
    if not heard or not phrase:
        return False
    allowed = int(tolerance * len(phrase))
    n = len(phrase)
    for size in range(max(1, n - allowed), n + allowed + 1):
        for i in range(0, max(1, len(heard) - size + 1)):
            if word_distance(heard[i:i + size], phrase) <= allowed:
                return True
    return False


def forbidden_in(text: str, phrases: tuple[str, ...] | list[str],
                 tolerance: float = FORBIDDEN_TOLERANCE) -> list[str]:
    """The forbidden phrases said in ``text`` (exact for the script, tolerant for ASR)."""
    heard = _stems(text)
    return [p for p in phrases if contains(heard, _stems(p), tolerance)]


def _stems(text: str) -> list[str]:
    # "guaranteed returns" promises as much as "guaranteed return"
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in words_of(text)]


def spot_confirmed(text: str, phrase: str) -> bool:
    """Whether a keyphrase search's hit on ``phrase`` is borne out by the transcript of the
    same speech: at least one of its words must be there. (A search biased toward "risk
    free" also fires on "rate of this" now and then; ASR rarely loses every word.)"""
    heard = set(_stems(text))
    return any(word in heard for word in _stems(phrase))


def reads_in_full(text: str, clause: str, tolerance: float = DISCLOSURE_TOLERANCE) -> bool:
    """Whether ``text`` holds the whole clause (up to ``tolerance`` of its words misheard)."""
    return contains(words_of(text), words_of(clause), tolerance)
