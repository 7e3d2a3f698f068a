"""Request bodies bounded while they are read, whatever the route does with them.

JSON endpoints get `max_json_body_bytes`, the bucket webhook `max_event_body_bytes`, the proxied upload
the upload limit plus room for its form. A declared `Content-Length` over the limit is answered 413
without reading a byte; a body that grows past it (chunked, or lying about its length) stops being read
at the limit. Either way the answer is the usual `{"error": "too_large", ...}`.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from shared.errors import ErrorCode
from shared.settings import Settings

# Multipart boundaries, part headers and the form's small fields (api/proxied_upload.py caps them).
FORM_OVERHEAD_BYTES = 1024 * 1024


class BodyLimits:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit_for(self, method: str, path: str) -> int:
        if method == "POST" and path.rstrip("/") == "/v1/documents":
            return self.settings.max_upload_size + FORM_OVERHEAD_BYTES
        if path.startswith("/v1/events/"):
            return self.settings.max_event_body_bytes
        return self.settings.max_json_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        detail = f"The request body is larger than this endpoint's {limit}-byte limit."
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await error_response(ErrorCode.TOO_LARGE, detail)(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException reaches the app's handler even from inside FastAPI's body parsing.
                    raise HTTPException(413, detail=detail)
            return message

        await self.app(scope, bounded_receive, send)
