"""Headers on every answer that keep the page from being framed, sniffed or fed foreign scripts.

The page (api/static) loads only its own files and talks only to the API and the bucket, so its
Content-Security-Policy allows exactly that: no inline script or style, no third-party origin, no
framing. JSON answers carry the same headers; they cost nothing there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import Settings

# Without an endpoint the bucket is AWS S3, whose presigned URLs are on a bucket- or region-named host.
AWS_S3_ORIGINS = "https://*.amazonaws.com"


def bucket_origin(settings: Settings) -> str:
    """The origin browsers send upload bytes to (presigned POST and part URLs)."""
    endpoint = settings.s3_public_endpoint_url or settings.s3_endpoint_url
    if not endpoint:
        return AWS_S3_ORIGINS
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {bucket_origin(settings)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.headers = {
            "Content-Security-Policy": content_security_policy(settings),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
