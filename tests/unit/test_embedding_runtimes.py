"""The local model's runtimes: the ONNX export from the packaged weights, and every runtime's vectors
against sentence-transformers on CPU torch (the reference), on short texts and on the chunks the
pipeline makes of a real document (the project's README)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from shared.pipeline import embedding, onnx_export
from shared.pipeline.chunking import ChunkingSettings, chunk
from shared.pipeline.embedding import RUNTIMES, Embedder, auto_runtime, make_local_embedder, runtime_of
from shared.pipeline.extract import extract
from shared.pipeline.worker_context import WorkerContext
from shared.settings import Settings
from shared.storage import Storage

README = Path(__file__).resolve().parents[2] / "README.md"

TEXTS = [
    "Who recorded the passing ships?",
    "The lighthouse keeper logged every passing ship in a leather-bound ledger.",
    "Rivers carry sediment to the sea; estuaries trap most of it. " * 30,  # over 256 tokens: truncated
    "können Umlaute",
    "a",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh model cache for this module: the export runs once, from the packaged weights."""
    folder = tmp_path_factory.mktemp("model-cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    try:
        yield folder / "chute" / "models"
    finally:
        if previous is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="module")
def embedders(cache_dir: Path) -> dict[str, Embedder]:
    settings = Settings(embedding_batch_size=2)  # several batches, each padded differently
    return {runtime: make_local_embedder(settings, runtime) for runtime in RUNTIMES}


def test_export_is_cached_by_fingerprint_and_made_once(
    cache_dir: Path, embedders: dict[str, Embedder]
) -> None:
    model = onnx_export.locate()
    assert model.folder.parent == cache_dir
    assert model.fp32.is_file() and model.int8.is_file()
    assert model.int8.stat().st_size < model.fp32.stat().st_size
    stamps = (model.fp32.stat().st_mtime_ns, model.int8.stat().st_mtime_ns)

    again = onnx_export.ensure_exported()

    assert again == model
    assert (model.fp32.stat().st_mtime_ns, model.int8.stat().st_mtime_ns) == stamps
    assert not list(model.folder.glob("*.tmp"))


@pytest.mark.parametrize(
    ("runtime", "reference", "floor"),
    [
        ("torch-bf16", "torch", 0.999),
        ("onnx", "torch", 0.9999),
        ("onnx-int8", "onnx", 0.99),
        ("openvino-bf16", "torch", 0.999),
    ],
)
def test_runtimes_agree_with_their_reference(
    embedders: dict[str, Embedder], runtime: str, reference: str, floor: float
) -> None:
    vectors = embedders[runtime].embed(TEXTS)
    expected = embedders[reference].embed(TEXTS)

    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(vectors * expected, axis=1)) >= floor


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_rows_follow_the_input_order_whatever_the_batching(
    embedders: dict[str, Embedder], runtime: str
) -> None:
    embedder = embedders[runtime]
    together = embedder.embed(TEXTS)
    alone = np.concatenate([embedder.embed([text]) for text in TEXTS])

    assert np.min(np.sum(together * alone, axis=1)) >= 0.99
    assert embedder.embed([]).shape == (0, 384)


def test_the_nearest_text_is_found_by_every_runtime(embedders: dict[str, Embedder]) -> None:
    for embedder in embedders.values():
        vectors = embedder.embed(TEXTS)
        assert int(np.argmax(vectors[1:] @ vectors[0])) == 0  # the question finds the ledger sentence


@pytest.mark.parametrize("runtime", ["torch-bf16", "openvino-bf16"])
def test_bf16_runtimes_keep_the_vectors_of_real_document_chunks(
    embedders: dict[str, Embedder], runtime: str
) -> None:
    """Full 256-token chunks of real prose, where bfloat16's rounding adds up over the most tokens."""
    texts = [piece.text for piece in chunk(extract(README, "md"), ChunkingSettings())]
    assert len(texts) >= 5

    cosine = np.sum(embedders[runtime].embed(texts) * embedders["torch"].embed(texts), axis=1)

    assert cosine.min() >= 0.99


def test_auto_picks_the_fastest_runtime_measured_for_the_cpu() -> None:
    assert auto_runtime(frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})) == "torch-bf16"
    assert auto_runtime(frozenset({"avx512f", "avx512_bf16", "avx512_vnni"})) == "openvino-bf16"  # Zen 4
    assert auto_runtime(frozenset({"avx2", "fma"})) == "onnx"
    assert auto_runtime(frozenset()) == "onnx"


def test_runtime_setting_is_resolved_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16"}))
    assert runtime_of(Settings(embedding_runtime="auto")) == "torch-bf16"
    monkeypatch.setattr(embedding, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert runtime_of(Settings(embedding_runtime="auto")) == "openvino-bf16"
    monkeypatch.setattr(embedding, "cpu_flags", lambda: frozenset({"avx2"}))
    assert runtime_of(Settings(embedding_runtime="auto")) == "onnx"
    assert runtime_of(Settings(embedding_runtime="onnx-int8")) == "onnx-int8"
    with pytest.raises(ValidationError, match="embedding_runtime"):
        Settings(embedding_runtime="tensorflow")  # type: ignore[arg-type]


def test_a_worker_process_builds_its_embedder_once(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def fake(settings: Settings, runtime: str) -> object:
        made.append(runtime)
        return object()

    monkeypatch.setattr(embedding, "make_local_embedder", fake)
    monkeypatch.setattr(embedding, "cpu_flags", lambda: frozenset({"avx2"}))
    settings = Settings()
    ctx = WorkerContext(
        settings=settings,
        pool=ConnectionPool(settings.database_url, open=False),
        storage=Storage(settings),
        redis=redis.Redis.from_url(settings.redis_url),
    )

    first = ctx.embedder()
    second = ctx.embedder()

    assert first is second
    assert made == ["onnx"]
