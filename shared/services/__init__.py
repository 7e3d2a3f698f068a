"""Use cases behind the API: each takes a connection (the caller commits) and returns plain data."""
