"""The ingestion pipeline: one module per stage, and the orchestrator that runs them."""
