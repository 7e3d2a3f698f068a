"""The HTTP API (FastAPI): uploads, documents, tasks, search and operations."""
