"""Code both sides of Chute use: settings, database, storage, queue and the pipeline stages."""
