"""The one settings object. Every knob Chute has is a `CHUTE_*` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024

DEFAULT_ALLOWED_TYPES = [
    "pdf",
    "docx",
    "pptx",
    "xlsx",
    "csv",
    "html",
    "md",
    "txt",
    "eml",
    "epub",
    "odt",
    "rtf",
    "png",
    "jpg",
    "tiff",
    "webp",
    "bmp",
    "doc",
    "xls",
    "ppt",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHUTE_", env_file=".env", extra="ignore")

    # Postgres (psycopg conninfo) and Redis
    database_url: str = "postgresql://postgres@127.0.0.1:5432/chute"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # S3-compatible bucket: SeaweedFS (the local stack), MinIO or AWS S3
    s3_endpoint_url: str | None = None
    # What browsers and clients use to reach the bucket, when it differs from the workers' view.
    s3_public_endpoint_url: str | None = None
    s3_bucket: str = "chute"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    # Uploads
    max_upload_size: int = 100 * MiB
    presign_expires_seconds: int = 3600
    # Files at or above the threshold upload in parts, straight from the client to the bucket.
    multipart_threshold: int = Field(default=64 * MiB, ge=5 * MiB)
    multipart_part_size: int = Field(default=16 * MiB, ge=5 * MiB)
    allowed_types: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TYPES))

    # Chunking defaults (per upload overridable), in the embedding model's tokens with [CLS] and
    # [SEP]: 256 is all-MiniLM-L6-v2's whole window (shared/pipeline/chunking.py).
    chunk_size: int = 256
    chunk_overlap: int = 32

    # Embeddings
    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_dimensions: int = 384
    embedding_batch_size: int = 32
    # Tokens the model reads of one text, specials included; longer chunks are cut off by the model
    # and counted. Unset: 256 for the local model, 512 for `openai` (set your model's).
    embedding_window: int | None = None
    openai_base_url: str | None = None
    openai_api_key: SecretStr = SecretStr("not-needed")
    openai_timeout_seconds: float = 60.0
    openai_max_retries: int = 4
    # Send `dimensions` with each request (OpenAI's text-embedding-3 models can shorten vectors).
    openai_send_dimensions: bool = False
    # Threads of the local model, whatever its runtime (None: the process's cores divided by the
    # worker's processes, so they do not fight over them).
    torch_threads: int | None = None
    # Which runtime runs the local model: auto (torch-bf16 where the CPU has AMX, openvino-bf16 where
    # it has AVX-512 BF16 but no AMX, else onnx), torch, torch-bf16, onnx, onnx-int8 or openvino-bf16.
    # bench/results/REPORT.md compares their speed and quality.
    embedding_runtime: Literal["auto", "torch", "torch-bf16", "onnx", "onnx-int8", "openvino-bf16"] = "auto"
    # Where ONNX exports of the packaged model are cached (made by `make install`, else on first use).
    # Unset: $XDG_CACHE_HOME/chute/models, else ~/.cache/chute/models.
    model_cache_dir: Path | None = None

    # The embedding server (`python -m shared.embedding_server`): one model copy per host, serving
    # OpenAI's `POST /v1/embeddings` to every worker (CHUTE_EMBEDDING_PROVIDER=openai, base URL at it).
    embedding_server_host: str = "127.0.0.1"
    embedding_server_port: int = 8090
    # auto: CUDA in fp16 where torch sees a GPU, else the CPU runtime CHUTE_EMBEDDING_RUNTIME names.
    embedding_server_device: Literal["auto", "cuda", "cpu"] = "auto"
    # A sentence-transformers model folder (None: the packaged all-MiniLM-L6-v2).
    embedding_server_model_path: Path | None = None
    # A batch holds at most this many tokens, padding counted (texts x the longest text's tokens);
    # the model thread waits at most max_wait_ms after the oldest text arrived for a batch to fill.
    embedding_server_max_batch_tokens: int = Field(default=8192, ge=256)
    embedding_server_max_wait_ms: float = Field(default=5.0, ge=0)
    # Texts one request may carry (OpenAI's limit is 2048).
    embedding_server_max_inputs: int = Field(default=2048, ge=1)

    # Worker
    task_soft_time_limit: int = 1800
    task_time_limit: int = 1900
    lease_seconds: int = 300
    max_attempts: int = 3
    work_dir: Path | None = None
    # Processes per worker (None: one per core the worker may use, its affinity and cgroup quota
    # counted: shared/cores.py). One per core, each model on one thread, is the fastest measured with
    # the local model; each process holds its own model and extraction process (about 470 MiB), so
    # set 1 where memory is tight.
    worker_concurrency: int | None = Field(default=None, ge=1)
    # Each worker serves Prometheus metrics here (0 turns it off).
    worker_metrics_port: int = 9101
    worker_metrics_host: str = "127.0.0.1"
    # Extraction runs in a child process with these bounds, so a hostile file only kills the child.
    extraction_memory_limit: int = 2 * 1024 * MiB
    extraction_timeout_seconds: int = 600
    # OCR of scanned PDF pages and images (Tesseract): auto = on where its language data is installed.
    ocr: Literal["auto", "off"] = "auto"
    ocr_languages: str = "eng"  # Tesseract's codes joined by "+"; each needs tesseract-ocr-<code>
    # Pages are rendered at this resolution for OCR (bench/results/REPORT.md, "OCR": 150 read every
    # word that 300 did, 8 pt print included, 1.5x faster; 100 lost 3% of the words).
    ocr_dpi: int = Field(default=150, ge=72, le=600)
    # A document with more pages to read by OCR is refused (`too_large`) rather than read for hours.
    ocr_max_pages: int = Field(default=500, ge=1)
    # Images (and rendered pages) above this many pixels are refused: decompression bombs.
    ocr_max_image_pixels: int = 50_000_000
    # The extraction deadline grows by this much for each page read by OCR.
    ocr_seconds_per_page: float = 20.0
    # Past this many chunks a document is refused (`too_large`) instead of embedding for hours.
    max_chunks: int = 25_000

    # Reconciler: finds documents whose message was lost, whose worker died, or whose upload
    # arrived without a complete call or never arrived.
    reconcile_interval_seconds: float = 30.0
    queued_grace_seconds: int = 120
    upload_grace_seconds: int = 60
    # The reconciler touches this file after each pass, for health checks.
    reconciler_heartbeat_file: Path | None = None

    # S3 event notifications (MinIO webhook / AWS) authenticate with this bearer token.
    events_token: SecretStr | None = None

    # API
    # Request bodies are refused (413) past these sizes, before they are read whole: JSON endpoints
    # (a batch of 100 uploads with metadata fits), and the bucket's event webhook. The proxied upload's
    # limit is max_upload_size.
    max_json_body_bytes: int = Field(default=2 * MiB, ge=64 * 1024)
    max_event_body_bytes: int = Field(default=256 * 1024, ge=16 * 1024)
    # Proxied uploads (POST /v1/documents) one API process streams at once; more wait their turn,
    # so its memory stays at most this many multipart parts (8 MiB each).
    proxied_upload_concurrency: int = 8
    # A proxied upload is cut off (408) when its client sends nothing for this long, or is not done
    # within the timeout (100 MiB in an hour is 230 kbit/s); its row expires at that deadline too.
    proxied_upload_idle_seconds: float = Field(default=30.0, gt=0)
    proxied_upload_timeout_seconds: int = Field(default=3600, ge=10)
    # How long an API process remembers which tenant a valid key belongs to (0: ask every time).
    # `chute keys revoke` reaches every process at once through Redis; a process that misses the
    # notice (Redis down) stops accepting the key within this time.
    api_key_cache_seconds: float = 10.0
    # How long a key that matched nothing is refused without asking the database again.
    api_key_negative_cache_seconds: float = 5.0
    # Requests per second, shared by every API process through Redis: per tenant, and per client
    # address for requests without a valid key (and /ready, /metrics). 429 with Retry-After past
    # them; 0 turns a limit off. Behind a proxy, run uvicorn with --proxy-headers.
    rate_limit_per_second: int = Field(default=100, ge=0)
    anonymous_rate_limit_per_second: int = Field(default=20, ge=0)
    # What one tenant may hold (429 quota_exceeded past them): documents, declared bytes, and uploads
    # presigned but not yet arrived. Chunks per document: max_chunks.
    tenant_max_documents: int = Field(default=100_000, ge=1)
    tenant_max_bytes: int = Field(default=100 * 1024 * MiB, ge=1)
    tenant_max_pending_uploads: int = Field(default=1_000, ge=1)
    # Live document streams (SSE) open at once, per tenant and per API process (429 past them).
    sse_max_streams_per_tenant: int = Field(default=50, ge=1)
    sse_max_streams_per_process: int = Field(default=2_000, ge=1)
    db_pool_size: int = 10
    # Postgres cancels an API statement running longer than this (search above all), so one tenant's
    # expensive query cannot hold a pooled connection; the client gets 503 `query_timeout`. 0: none.
    api_statement_timeout_ms: int = Field(default=10_000, ge=0)
    cors_allow_origins: list[str] = Field(default_factory=lambda: ["*"])


@lru_cache
def get_settings() -> Settings:
    return Settings()
