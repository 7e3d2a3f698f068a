"""`python -m shared.embedding_server`: serve on CHUTE_EMBEDDING_SERVER_HOST:PORT until SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from shared.embedding_server.app import create_app
from shared.logging import configure_logging
from shared.pipeline.environment import configure_library_environment
from shared.settings import Settings


def main() -> None:
    configure_library_environment()  # before the model's libraries load
    configure_logging()
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.embedding_server_host,
        port=settings.embedding_server_port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
