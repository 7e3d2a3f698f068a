"""The local stack (`make up`) seen from its project: `chute` run in the project directory, or below it,
finds the stack's settings in `.chute/env` by itself, so nothing needs exporting first.

`make up` writes that file (`infra.stack.Stack.write_env_file`): the server's `CHUTE_*` settings, which
the admin commands use, and `CHUTE_URL`, the API's address, which the client commands use. The
environment always wins over the file. Standard library only, so `chute --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from shared.settings import Settings

ENV_FILE = Path(".chute") / "env"
NO_STACK = "no Chute stack found: start one with `make up`, or set CHUTE_DATABASE_URL"


def find_env_file(start: Path | None = None) -> Path | None:
    """The nearest `.chute/env` in `start` (default: the current directory) or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ENV_FILE).is_file():
            return folder / ENV_FILE
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file as the stack writes it: `export NAME=value` lines."""
    variables = {}
    for line in path.read_text().splitlines():
        name, equals, value = line.removeprefix("export ").partition("=")
        if equals:
            variables[name.strip()] = value.strip()
    return variables


def api_url() -> str | None:
    """`CHUTE_URL` from the environment, else the local stack's, else None."""
    if "CHUTE_URL" in os.environ:
        return os.environ["CHUTE_URL"]
    env_file = find_env_file()
    return read_env_file(env_file).get("CHUTE_URL") if env_file else None


def server_settings() -> Settings:
    """The server's settings for the admin commands (migrate, bucket, keys).

    The environment's (and `.env`'s) when they name a database; otherwise the local stack's, from the
    nearest `.chute/env`, each variable of the environment still winning. With neither, exits 2 saying
    what to do: the built-in default database is never guessed at.
    """
    from shared.settings import Settings, get_settings

    settings = get_settings()
    if "database_url" in settings.model_fields_set:
        return settings
    env_file = find_env_file()
    if env_file is None:
        typer.echo(f"error: {NO_STACK}", err=True)
        raise typer.Exit(2)
    # pydantic-settings: the environment beats env files, and the later file (`.env`) the earlier.
    # `_env_file` is its documented init argument, which mypy cannot see without pydantic's plugin.
    return Settings(_env_file=(env_file, ".env"))  # type: ignore[call-arg]
