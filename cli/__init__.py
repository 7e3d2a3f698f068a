"""The `chute` command line."""
