"""Real-text chunks of a fixed size for speed benchmarks: SciFact's PubMed abstracts, read from
`../shared/retrieval/scifact` (CC BY-NC: measured with, never copied into the repository).

Real text has 3.5-4.9 characters per token where the generated corpus has 5.3 (issue 13), so the same
characters make more tokens and a slower chunks/s: the honest figure for real documents.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import REPO

SCIFACT = REPO.parent / "shared" / "retrieval" / "scifact" / "corpus.jsonl"


def available(path: Path = SCIFACT) -> bool:
    return path.exists()


def real_text_chunks(count: int, size: int = 1000, path: Path = SCIFACT) -> list[str]:
    """`count` chunks of about `size` characters (cut at spaces) from the abstracts run together,
    spread evenly over the corpus; windows overlap when the corpus is too small for `count` apart."""
    with path.open(encoding="utf-8") as lines:
        text = "\n\n".join(
            f"{row['title']}\n{row['text']}" for row in (json.loads(line) for line in lines if line.strip())
        )
    stride = max(1, (len(text) - size) // count)
    chunks = []
    for i in range(count):
        start = text.find(" ", i * stride) + 1
        end = text.rfind(" ", start, start + size)
        chunks.append(text[start : end if end > start else start + size])
    return chunks
