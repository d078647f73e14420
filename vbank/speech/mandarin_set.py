"""The Mandarin answer set: flow answers said by a human voice, with the phrases the step expects.

The recordings (``tests/fixtures/audio/zh``, built by its ``make.py`` from Debian's
``gcin-voice`` syllables) say risk questionnaire answers, consent and 转人工, plus speech that
is none of the step's answers. Each comes with the step's expected phrases as the branch
builds them (``answer_phrases`` for a question, the consent step's ``expect`` and ``refuse``)
and the requests for a person (PERSON_PHRASES: 转人工 ...), which every step listens for with the
digital human. The noisy condition adds white noise at 10 dB SNR
to the same recordings, seeded, when loaded (the folder stays small). Used by
``tests/integration/test_mandarin.py`` and the speech benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import vbank
from vbank.domain.flows import FLOWS_DIR, PERSON_PHRASES, load_flow
from vbank.domain.risk_answers import answer_phrases
from vbank.domain.risk_questionnaire import load_questionnaire
from vbank.speech.conditions import read_wav, with_noise

#: listening conditions: clean, or white noise this far below the speech (dB)
CONDITIONS = {"clean": None, "noise10": 10.0}


@dataclass(frozen=True)
class MandarinUtterance:
    """One recording, the phrases its step expects, and which of them it says (None:
    none of them, to be rejected)."""

    name: str
    condition: str  # a key of CONDITIONS
    said: str  # the words, in characters
    expected: tuple[str, ...]
    answer: str | None
    pcm: NDArray[np.int16]  # 48 kHz mono


def mandarin_folder() -> Path:
    """The repository's Mandarin recordings (``tests/fixtures/audio/zh``)."""
    return Path(vbank.__file__).resolve().parents[1] / "tests" / "fixtures" / "audio" / "zh"


@cache
def expected_phrases(step: str) -> tuple[str, ...]:
    """What the branch listens for at ``step``: a question id (``q1``...) or ``consent``."""
    if step == "consent":
        flow = load_flow(FLOWS_DIR / "loan_signing.yaml")
        consent = next(s for s in flow.steps if s.kind == "consent")
        phrases = [*consent.expect.get("zh", ()), *consent.refuse.get("zh", ())]
    else:
        phrases = answer_phrases(load_questionnaire().question(step), "zh")
    # the digital human also listens for a request for a person at every step
    return tuple(dict.fromkeys([*phrases, *PERSON_PHRASES["zh"]]))


def mandarin_utterances(conditions: tuple[str, ...] = ("clean", "noise10"),
                        folder: Path | None = None) -> list[MandarinUtterance]:
    """Every recording in ``folder/utterances.tsv`` under each of ``conditions``."""
    folder = folder or mandarin_folder()
    rows = (folder / "utterances.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out: list[MandarinUtterance] = []
    for condition in conditions:
        snr = CONDITIONS[condition]
        for seed, row in enumerate(r for r in rows if r.strip()):
            file, step, said, answer, _voice = row.split("\t")
            pcm = read_wav(folder / file)
            if snr is not None:
                pcm = with_noise(pcm, snr, seed=seed, band_hz=8000)
            out.append(MandarinUtterance(Path(file).stem, condition, said,
                                         expected_phrases(step),
                                         None if answer == "-" else answer, pcm))
    return out
