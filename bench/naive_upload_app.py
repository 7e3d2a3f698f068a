"""The baseline for benchmark 6: an upload endpoint that reads each whole file into memory, the way
the original lesson does (`await file.read()`). Run by the benchmark as its own uvicorn process:

    python -m uvicorn bench.naive_upload_app:app --port 8090
"""

from __future__ import annotations

import hashlib

from fastapi import FastAPI, UploadFile

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/upload")
async def upload(file: UploadFile) -> dict[str, object]:
    data = await file.read()  # the whole upload in memory, as the lesson's endpoint does
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
