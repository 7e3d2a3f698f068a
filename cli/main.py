"""`chute`: upload and search documents over the HTTP API, and administer a deployment.

Client commands (upload, status, ls, search, rm) live in `cli.commands` and use only HTTP. The admin
commands here (migrate, bucket, keys) use the server's own `CHUTE_*` settings: the environment's, or
in a project with a running local stack, its `.chute/env` (`cli.local_stack`). Everything heavy is
imported inside the commands so that `chute --help` stays fast.
"""

from __future__ import annotations

import typer

from cli import commands
from cli.keys import keys_app

app = typer.Typer(
    help="Chute: document ingestion for retrieval. Upload, follow, search and delete documents; "
    "administer a deployment.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # never print an API key held in a local variable
)
commands.register(app)

ADMIN = "Administration (uses the server's CHUTE_* settings, or the local stack's .chute/env)"
bucket_app = typer.Typer(help="The S3 bucket.", no_args_is_help=True)
app.add_typer(keys_app, name="keys", rich_help_panel=ADMIN)
app.add_typer(bucket_app, name="bucket", rich_help_panel=ADMIN)


@app.command(rich_help_panel=ADMIN)
def migrate() -> None:
    """Apply the database migrations that are not applied yet."""
    from cli.local_stack import server_settings
    from shared.db import migrate as apply_migrations

    applied = apply_migrations(server_settings())
    typer.echo(f"Applied migrations: {', '.join(applied)}" if applied else "Database is up to date.")


@bucket_app.command("create")
def create_bucket() -> None:
    """Create the bucket if it is missing, and allow browsers to upload to it (CORS)."""
    from cli.local_stack import server_settings
    from shared.storage import Storage

    settings = server_settings()
    Storage(settings).ensure_bucket(cors_origins=settings.cors_allow_origins)
    typer.echo(f"Bucket '{settings.s3_bucket}' is ready.")


if __name__ == "__main__":
    app()
