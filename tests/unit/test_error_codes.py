"""`ErrorCode` is the one map from failure code to HTTP status: every code the code base raises is in
it, and an error's status is its code's, at `complete` and `reindex` alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.errors import AppError, DocumentFailed, ErrorCode, NotFound, or_not_found
from shared.services.uploads import Completion

ROOT = Path(__file__).resolve().parents[2]
# A code given as a literal: `code="…"`, `DocumentFailed("…"`, `run.fail("…"`, `error_code = '…'`.
LITERAL = re.compile(r"""(?:\bcode=|DocumentFailed\(\s*|\.fail\(\s*|error_code = )["']([a-z_]+)["']""")
# A document failure raised with its code as a literal or as a member: `DocumentFailed(ErrorCode.X`.
FAILURE = re.compile(r"""DocumentFailed\(\s*(?:["']([a-z_]+)["']|ErrorCode\.([A-Z_]+))""")
# The embedding server answers in the OpenAI API's own error shape, not Chute's.
OTHER_CONTRACTS = ("shared/embedding_server/",)


def _sources(*folders: str) -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text()
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not path.relative_to(ROOT).as_posix().startswith(OTHER_CONTRACTS)
    }


def test_every_code_written_as_a_literal_is_an_error_code() -> None:
    known = {code.value for code in ErrorCode}
    unknown = {
        (where, code)
        for where, text in _sources("api", "shared", "worker").items()
        for code in LITERAL.findall(text)
        if code not in known
    }
    assert not unknown, f"codes outside shared.errors.ErrorCode: {sorted(unknown)}"


def test_what_complete_and_reindex_can_refuse_has_a_status() -> None:
    """The object checks `complete` and `reindex` run (shared.services.uploads.check_object, with the
    leading-bytes sniffing) answer with the failure's own code, so each such code needs a status."""
    checks = "".join(
        (ROOT / path).read_text() for path in ("shared/pipeline/sniff.py", "shared/services/uploads.py")
    )
    raised = {ErrorCode(value) if value else ErrorCode[name] for value, name in FAILURE.findall(checks)}
    assert {ErrorCode.TOO_LARGE, ErrorCode.SIZE_MISMATCH, ErrorCode.TYPE_MISMATCH} <= raised
    assert all(code.status is not None for code in raised), [code for code in raised if code.status is None]


@pytest.mark.parametrize(
    ("code", "status"),
    [("too_large", 413), ("size_mismatch", 422), ("type_mismatch", 422), ("encrypted", 422)],
)
def test_a_failed_check_answers_its_codes_status(code: str, status: int) -> None:
    completion = Completion(document={}, failure=DocumentFailed(code, "The object is not right."))
    with pytest.raises(AppError) as refused:
        completion.raise_failure()
    assert (refused.value.code, refused.value.status) == (code, status)


def test_a_completion_without_a_failure_raises_nothing() -> None:
    Completion(document={}).raise_failure()


def test_unknown_codes_and_codes_without_a_status_are_refused() -> None:
    with pytest.raises(ValueError, match="not an ErrorCode"):
        AppError("x", code="no_such_code")
    with pytest.raises(ValueError, match="not an ErrorCode"):
        DocumentFailed("no_such_code", "x")
    with pytest.raises(ValueError, match="no_text"):
        AppError("x", code=ErrorCode.NO_TEXT)  # stored on documents only: never an HTTP answer


def test_a_plain_string_code_is_the_enum_member() -> None:
    error = AppError("The cursor is not one this API returned.", code="invalid_cursor")
    assert error.code is ErrorCode.INVALID_CURSOR
    assert error.status == 400


def test_or_not_found_answers_404_naming_what() -> None:
    assert or_not_found({"id": 1}, "task") == {"id": 1}
    with pytest.raises(NotFound, match=r"^No such task\.$") as missing:
        or_not_found(None, "task")
    assert missing.value.status == 404
