"""Every real document in ../shared/corpus goes through the pipeline and ends as MANIFEST.md says."""

from __future__ import annotations

import pytest

from tests.corpus import ABSENT, CORPUS, Expectation, read_manifest
from tests.helpers import ChuteClient


@pytest.fixture(scope="module")
def manifest() -> list[Expectation]:
    if not CORPUS.is_dir():
        pytest.skip(ABSENT)
    return read_manifest()


def test_every_corpus_file_ends_as_the_manifest_says(
    client: ChuteClient, manifest: list[Expectation]
) -> None:
    assert len(manifest) >= 20
    queued: dict[str, str] = {}
    for item in manifest:
        data = (CORPUS / item.filename).read_bytes()
        if item.status == "refused":
            answer = client.presign(item.filename, len(data))
            assert answer.status_code == 400, item.filename
            assert answer.json()["error"] == item.code
            continue
        queued[item.filename] = client.upload(item.filename, data)["document_id"]

    outcomes = {name: client.wait(document_id, timeout=600) for name, document_id in queued.items()}

    wrong = []
    for item in manifest:
        if item.status == "refused":
            continue
        document = outcomes[item.filename]
        got = (document["status"], (document["error"] or {}).get("code"))
        if got != (item.status, item.code):
            wrong.append(
                f"{item.filename}: expected {item.status}/{item.code}, got {got} {document['error']}"
            )
        elif item.status == "failed":
            assert document["error"]["message"], item.filename
    assert not wrong, "\n".join(wrong)

    missed = []
    for item in manifest:
        if item.find is None:
            continue
        hits = client.search(item.find, k=3, mode="hybrid")
        if outcomes[item.filename]["document_id"] not in [h["document_id"] for h in hits]:
            missed.append(f"{item.filename}: '{item.find}' -> {[h['filename'] for h in hits]}")
    assert not missed, "\n".join(missed)


def test_text_survives_decoding(client: ChuteClient, manifest: list[Expectation]) -> None:
    umlauts = client.ingest("umlauts-utf8.md", (CORPUS / "umlauts-utf8.md").read_bytes())
    utf16 = client.ingest("fake-text-utf-16.txt", (CORPUS / "fake-text-utf-16.txt").read_bytes())

    def text_of(document: dict[str, object]) -> str:
        chunks = client.http.get(f"/v1/documents/{document['document_id']}/chunks").json()["items"]
        return " ".join(c["text"] for c in chunks)

    assert "können" in text_of(umlauts)
    assert "Ã" not in text_of(umlauts)
    assert "test document" in text_of(utf16).lower()
    assert "\x00" not in text_of(utf16)
