"""The ``swx`` command."""

from __future__ import annotations

import os
import secrets

import typer

from .config import get_settings

app = typer.Typer(help="swx: cross-border e-commerce single window", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations)", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Create or migrate the database named by SWX_DATABASE_URL."""
    from .migrate import upgrade

    upgrade(get_settings(), revision)
    typer.echo(f"database at {revision}")


@app.command()
def serve(
    host: str = typer.Option(None, help="address to listen on (default SWX_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="port to listen on (default SWX_PORT or 8000)"),
    workers: int = typer.Option(1, help="server worker processes"),
) -> None:
    """Migrate the database and start the service."""
    import uvicorn

    from .logs import configure
    from .migrate import upgrade

    settings = get_settings()
    configure(settings.log_level, settings.log_json)
    upgrade(settings)
    if not settings.operator_token:
        # One token for every worker process, printed once here rather than by each worker.
        token = "swx_op_" + secrets.token_urlsafe(32)
        os.environ["SWX_OPERATOR_TOKEN"] = token
        get_settings.cache_clear()
        typer.echo(f"swx: no SWX_OPERATOR_TOKEN set; this run's operator token is:\n  {token}", err=True)
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":  # pragma: no cover
    app()
