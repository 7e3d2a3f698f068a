"""Deployment support: the local stack launcher (`python -m infra.stack`) and compose files."""
