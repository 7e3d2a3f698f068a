"""Email (.eml) through the standard library: headers, then the plain text body, else the HTML one.
Attachments are not read: each would need its own type check and extractor."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage, MIMEPart
from pathlib import Path

from shared.pipeline.elements import Element
from shared.pipeline.extractors.html import html_elements
from shared.pipeline.extractors.text import plain_text_elements
from shared.pipeline.sniff import decode_text

_HEADERS = ("Subject", "From", "To", "Cc", "Date")


def extract_eml(path: Path) -> list[Element]:
    with path.open("rb") as file:
        message = email.message_from_binary_file(file, policy=policy.default)
    elements: list[Element] = []
    for name in _HEADERS:
        value = message.get(name)
        if value is not None and str(value).strip():
            elements.append(Element(f"{name}: {value}", "EmailHeader"))
    if not isinstance(message, EmailMessage):
        return elements
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return elements
    text = _body_text(body)
    if body.get_content_subtype() == "html":
        elements += html_elements(text)
    else:
        elements += plain_text_elements(text)
    return elements


def _body_text(part: MIMEPart) -> str:
    """The part's text in its declared charset; by guessing when that charset is wrong or unknown."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):
        content = None
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True)
    return decode_text(payload) if isinstance(payload, bytes) else ""
