"""The Celery worker: thin tasks that call the pipeline in `shared`."""
