"""The embedding server (shared/embedding_server), started as a real process by the stack launcher and
reached over HTTP: the same vectors as the in-process embedder, one batch for several clients' texts,
OpenAI's request and error shapes, and a worker indexing a document through it."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from infra.stack import Ports, Stack
from shared.pipeline.embedding import make_local_embedder, runtime_of
from shared.settings import Settings
from tests.faults.support import FAULT_SETTINGS, new_client, running_stack, start_worker

MODEL = "all-MiniLM-L6-v2"
TEXTS = [
    "The ferry timetable changes in winter: boats leave the harbour every ninety minutes.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "Invoices are due thirty days after delivery; late payments carry two percent interest.",
    "x",
    "A much longer passage about the tides, " * 40,  # past the model's 256-token window
]


def start_server(root: Path, **settings: str) -> Stack:
    stack = Stack(root, Ports.free())
    stack.start_embedding_server(env=settings)
    return stack


def served(root: Path, **settings: str) -> tuple[dict[str, str], np.ndarray]:
    """A server started with `settings`: its /health and its vectors of TEXTS; stopped after."""
    stack = start_server(root, **settings)
    try:
        server = f"http://127.0.0.1:{stack.ports.embeddings}"
        health = httpx.get(f"{server}/health", timeout=10).json()
        answer = client(server).embeddings.create(model=MODEL, input=TEXTS)
    finally:
        stack.stop_all()
    return health, np.asarray([row.embedding for row in answer.data], dtype=np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A 50 ms wait for a batch to fill: concurrent requests surely meet in one batch.
    stack = start_server(tmp_path_factory.mktemp("embedding-server"), CHUTE_EMBEDDING_SERVER_MAX_WAIT_MS="50")
    try:
        yield f"http://127.0.0.1:{stack.ports.embeddings}"
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def in_process() -> np.ndarray:
    settings = Settings()
    return make_local_embedder(settings, runtime_of(settings)).embed(TEXTS)


def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0)


def metric(server: str, name: str) -> float:
    text = httpx.get(f"{server}/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_vectors_equal_the_in_process_embedders(server: str, in_process: np.ndarray, encoding: str) -> None:
    answer = client(server).embeddings.create(model=MODEL, input=TEXTS, encoding_format=encoding)

    if encoding == "base64":
        rows = [np.frombuffer(base64.b64decode(row.embedding), dtype="<f4") for row in answer.data]
    else:
        rows = [np.asarray(row.embedding, dtype=np.float32) for row in answer.data]
    vectors = np.stack(rows)
    assert [row.index for row in answer.data] == list(range(len(TEXTS)))
    assert vectors.shape == (len(TEXTS), 384)
    cosines = np.sum(vectors * in_process, axis=1) / np.linalg.norm(vectors, axis=1)
    assert cosines.min() >= 0.999, cosines
    assert answer.usage.prompt_tokens > 256  # the long text counts its 256 tokens, no more


@pytest.mark.parametrize("runtime", ["auto", "onnx", "openvino-bf16"])
def test_the_server_runs_the_cpu_runtime_the_setting_names(tmp_path: Path, runtime: str) -> None:
    """As the in-process embedder does: `auto` resolves by the CPU's flags to the same runtime."""
    stack = start_server(tmp_path, CHUTE_EMBEDDING_SERVER_DEVICE="cpu", CHUTE_EMBEDDING_RUNTIME=runtime)
    try:
        health = httpx.get(f"http://127.0.0.1:{stack.ports.embeddings}/health", timeout=10).json()
    finally:
        stack.stop_all()

    assert health["runtime"] == runtime_of(Settings(embedding_runtime=runtime))  # type: ignore[arg-type]


def test_one_string_is_one_vector(server: str, in_process: np.ndarray) -> None:
    answer = client(server).embeddings.create(model=MODEL, input=TEXTS[1])

    vector = np.asarray(answer.data[0].embedding, dtype=np.float32)
    assert len(answer.data) == 1
    assert float(vector @ in_process[1]) >= 0.999


def test_concurrent_clients_share_batches(server: str) -> None:
    requests_before = metric(server, 'chute_embedding_server_requests_total{outcome="ok"}')
    alone_before = metric(server, 'chute_embedding_server_batch_requests_bucket{le="1.0"}')
    batches_before = metric(server, "chute_embedding_server_batch_requests_count")

    def send(worker: int) -> int:
        with httpx.Client(timeout=60) as http:
            for round_ in range(3):
                texts = [f"client {worker} round {round_} text {i}: {TEXTS[i % 3]}" for i in range(4)]
                answer = http.post(f"{server}/v1/embeddings", json={"model": MODEL, "input": texts})
                assert answer.status_code == 200, answer.text
        return 3

    with ThreadPoolExecutor(8) as pool:
        sent = sum(pool.map(send, range(8)))

    batches = metric(server, "chute_embedding_server_batch_requests_count") - batches_before
    alone = metric(server, 'chute_embedding_server_batch_requests_bucket{le="1.0"}') - alone_before
    assert metric(server, 'chute_embedding_server_requests_total{outcome="ok"}') - requests_before == sent
    assert batches < sent, "every request ran in a batch of its own"
    assert alone < batches, "no batch held texts of more than one request"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": MODEL, "input": []}, "input", "empty list"),
        ({"model": MODEL, "input": ["a"] * 2049}, "input", "at most 2048"),
        ({"model": MODEL, "input": ["fine", 7]}, "input", "valid string"),
        ({"model": MODEL, "input": [[101, 102]]}, "input", "valid string"),  # token ids: not accepted
        ({"input": ["no model"]}, "model", "required"),
        ({"model": MODEL, "input": "a", "encoding_format": "int8"}, "encoding_format", "float"),
        ({"model": MODEL, "input": "a", "dimensions": 256}, "dimensions", "384"),
    ],
    ids=["empty", "too-many", "non-string", "token-ids", "no-model", "bad-encoding", "dimensions"],
)
def test_bad_input_gets_400_in_openais_shape(
    server: str, body: dict[str, object], param: str, words: str
) -> None:
    answer = httpx.post(f"{server}/v1/embeddings", json=body, timeout=30)

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]


def test_an_unknown_model_is_404_model_not_found(server: str) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client(server).embeddings.create(model="text-embedding-3-large", input="hello")

    assert raised.value.code == "model_not_found"
    assert MODEL in raised.value.message


def test_a_body_that_is_not_json_gets_400(server: str) -> None:
    answer = httpx.post(
        f"{server}/v1/embeddings",
        content=b"{not json",
        headers={"content-type": "application/json"},
        timeout=30,
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "The request body is not valid JSON."


def test_a_worker_indexes_a_document_through_the_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_stack(tmp_path_factory.mktemp("through-server"), FAULT_SETTINGS, worker=False) as stack:
        stack.extra_env.update(stack.start_embedding_server())
        stack.stop("api")
        stack.start_api()  # search embeds its queries through the server too
        start_worker(stack)
        server = f"http://127.0.0.1:{stack.ports.embeddings}"
        with new_client(stack, "served") as chute:
            document = chute.ingest("ferry.txt", TEXTS[0].encode() + b"\n")

            hits = chute.search("when do boats leave the harbour in winter", k=1)

        assert document["chunk_count"] == 1
        assert hits[0]["document_id"] == document["document_id"]
        assert metric(server, "chute_embedding_server_texts_total") >= 1


def test_the_torch_path_gives_the_same_vectors(tmp_path: Path, in_process: np.ndarray) -> None:
    """The sentence-transformers path the GPU runs (here on the CPU in fp32)."""
    health, vectors = served(tmp_path, CHUTE_EMBEDDING_SERVER_DEVICE="cpu", CHUTE_EMBEDDING_RUNTIME="torch")

    assert health["runtime"] == "torch"
    assert np.sum(vectors * in_process, axis=1).min() >= 0.999


def test_cuda_fp16_gives_the_cpu_vectors(tmp_path: Path, in_process: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no GPU here (torch.cuda.is_available() is False): the CUDA fp16 path was not run")
    health, vectors = served(tmp_path, CHUTE_EMBEDDING_SERVER_DEVICE="cuda")

    assert (health["device"], health["runtime"]) == ("cuda", "cuda-fp16")
    assert np.sum(vectors * in_process, axis=1).min() >= 0.999
