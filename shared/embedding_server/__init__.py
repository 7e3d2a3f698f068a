"""The embedding server: OpenAI's `POST /v1/embeddings` in front of one model copy per host, batching
every worker's texts together (`python -m shared.embedding_server`; README "Embedding server").

Imports only torch, sentence-transformers, tokenizers, numpy, FastAPI/uvicorn, pydantic(-settings),
prometheus-client and structlog, so a GPU host needs nothing else of Chute's dependencies.
"""
