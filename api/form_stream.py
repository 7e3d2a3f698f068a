"""Incremental `multipart/form-data` parsing, so an uploaded file can be streamed on as it arrives."""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from shared.errors import AppError, ErrorCode


@dataclass(frozen=True, slots=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


Event = PartStart | PartData


class FormStream:
    """Feed it the request body piece by piece; it returns the parts' starts and bytes in order."""

    def __init__(self, content_type: str) -> None:
        media, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if media != b"multipart/form-data" or not boundary:
            raise AppError(
                "Send the file as multipart/form-data with a 'file' part.", code=ErrorCode.INVALID_FORM
            )
        self._events: list[Event] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._headers.clear,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
            },
        )

    def feed(self, data: bytes) -> list[Event]:
        try:
            self._parser.write(data)
        except FormParserError as error:
            raise _malformed() from error
        events, self._events = self._events, []
        return events

    def finish(self) -> None:
        try:
            self._parser.finalize()
        except FormParserError as error:
            raise _malformed() from error

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        filename = disposition.get(b"filename")
        content_type = self._headers.get(b"content-type")
        self._events.append(
            PartStart(
                name=disposition.get(b"name", b"").decode("utf-8", "replace"),
                filename=filename.decode("utf-8", "replace") if filename is not None else None,
                content_type=content_type.decode("latin-1") if content_type else None,
            )
        )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(PartData(data[start:end]))


def _malformed() -> AppError:
    return AppError(
        "The multipart/form-data body is malformed; send the file as a 'file' part.",
        code=ErrorCode.INVALID_FORM,
    )
