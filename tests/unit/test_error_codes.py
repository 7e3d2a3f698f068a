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
# The embedding server answers in the OpenAI API's own error shape, not Chute's.
OTHER_CONTRACTS = ("shared/embedding_server/",)


def _literals(*folders: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(OTHER_CONTRACTS):
                for code in LITERAL.findall(path.read_text()):
                    found.setdefault(code, set()).add(relative)
    return found


def test_every_code_written_as_a_literal_is_an_error_code() -> None:
    unknown = {
        code: where
        for code, where in _literals("api", "shared", "worker").items()
        if code not in {c.value for c in ErrorCode}
    }
    assert not unknown, f"codes outside shared.errors.ErrorCode: {unknown}"


def test_what_complete_and_reindex_can_refuse_has_a_status() -> None:
    """The object checks `complete` and `reindex` run answer with the failure's own code and status."""
    checks = _literals("shared/pipeline/sniff.py", "shared/services/uploads.py")
    assert {"too_large", "size_mismatch", "type_mismatch"} <= set(checks)
    for code in checks:
        assert ErrorCode(code).status is not None, f"{code} can refuse a request but has no HTTP status"


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
