"""The ``swx`` command."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .config import get_settings

app = typer.Typer(help="swx: cross-border e-commerce single window", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations)", no_args_is_help=True)
app.add_typer(db_app, name="db")
ledger_app = typer.Typer(help="The audit ledger: verification of the log and of proofs", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
regulators_app = typer.Typer(help="The regulator stand-ins (customs, inspection, tax, fx)", no_args_is_help=True)
app.add_typer(regulators_app, name="regulators")
samples_app = typer.Typer(help="Sample sets of declarations for testers (docs/testers.md)", no_args_is_help=True)
app.add_typer(samples_app, name="samples")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Create or migrate the database named by SWX_DATABASE_URL."""
    from .migrate import upgrade

    upgrade(get_settings(), revision)
    typer.echo(f"database at {revision}")


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Recompute every leaf and node, check every stored checkpoint; exit 1 naming the first failure."""
    import asyncio

    from ledger import load_or_create_key, verify_log

    from .db import make_engine, make_sessionmaker

    settings = get_settings()
    if not settings.ledger_key_path.exists():
        typer.echo(f"no ledger key at {settings.ledger_key_path}: nothing has been signed here", err=True)
        raise typer.Exit(2)
    signer = load_or_create_key(settings.ledger_key_path, settings.ledger_origin)

    async def run():
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                return await verify_log(session, signer.verifier_key())
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    typer.echo(str(report))
    raise typer.Exit(0 if report.ok else 1)


@ledger_app.command("check-proof")
def ledger_check_proof(
    path: str = typer.Argument(..., help="a JSON proof bundle (inclusion or consistency) as swx hands them out"),
    key: str = typer.Option(None, help="the verifier key you trust (GET /v1/ledger/key); default: the bundle's own"),
) -> None:
    """Check a proof bundle offline: checkpoint signature, then the inclusion or consistency proof."""
    from ledger.verify import check_proof_file

    result = check_proof_file(path, trusted_key=key)
    typer.echo(str(result))
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def serve(
    host: str = typer.Option(None, help="address to listen on (default SWX_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="port to listen on (default SWX_PORT or 8000)"),
    workers: int = typer.Option(1, help="server worker processes"),
) -> None:
    """Migrate the database and start the service (and, unless SWX_MOCK_REGULATORS=false or
    SWX_REGULATORS_URL names regulators elsewhere, the regulator stand-ins as their own process)."""
    import uvicorn

    from . import standins
    from .logs import configure
    from .migrate import upgrade

    # The service tells regulators where it is (SWX_PUBLIC_URL defaults to http://HOST:PORT).
    if host:
        os.environ["SWX_HOST"] = host
    if port:
        os.environ["SWX_PORT"] = str(port)
    get_settings.cache_clear()
    settings = get_settings()
    configure(settings.log_level, settings.log_json)
    os.environ["SWX_LOG_CONFIGURE"] = "1"  # worker processes start afresh: create_app configures theirs
    upgrade(settings)
    if not settings.operator_token:
        from .app import operator_token

        # One token for every worker process, made and printed once here rather than by each worker.
        os.environ["SWX_OPERATOR_TOKEN"] = operator_token(settings)
        get_settings.cache_clear()
        settings = get_settings()
    if workers > 1 and settings.mounts_regulators:
        typer.echo("swx: SWX_MOCK_MOUNTED=true puts the stand-ins in every worker, each with its own state: "
                   "unset it (swx serve then runs them as their own process) or serve one worker", err=True)
        raise typer.Exit(2)
    stand_ins = None
    if settings.starts_regulators:
        try:
            stand_ins = standins.start(settings, settings.operator_token or "")
        except standins.PortTaken as exc:
            typer.echo(f"swx: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            access_log=False,
            log_config=None,
        )
    finally:
        if stand_ins is not None:
            standins.stop(stand_ins)


@app.command()
def worker() -> None:
    """Deliver to the regulators and sequence the ledger, without serving HTTP (several may run on PostgreSQL)."""
    import asyncio

    from .logs import configure
    from .worker import run_worker

    settings = get_settings()
    configure(settings.log_level, settings.log_json)
    asyncio.run(run_worker(settings))


@regulators_app.command("serve")
def regulators_serve(
    port: int = typer.Option(8100, help="port to listen on"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    gateway: str = typer.Option("http://127.0.0.1:8000", help="the window's URL, for receipts and registry reads"),
    keys_from_window: bool = typer.Option(
        False, help="wait for the window, then take a fresh key per regulator from it with the operator token"),
) -> None:
    """Run the four stand-ins on their own (keys from SWX_MOCK_KEYS='{"customs": "swx_…", …}' or
    --keys-from-window, the delivery token from SWX_MOCK_DELIVERY_TOKEN, the operator token from
    SWX_MOCK_OPERATOR_TOKEN)."""
    import asyncio

    import uvicorn

    from mock_customs.app import MODULES
    from mock_customs.app import create_app as create_mocks
    from mock_customs.config import MockSettings
    from mock_customs.onboarding import OnboardingFailed
    from mock_customs.onboarding import keys_from_window as take_keys

    settings = MockSettings(gateway_url=gateway)
    if keys_from_window:
        try:
            settings.keys.update(asyncio.run(take_keys(settings, list(MODULES))))
        except OnboardingFailed as exc:
            typer.echo(f"swx regulators: {exc}", err=True)
            raise typer.Exit(2) from None
    uvicorn.run(create_mocks(settings), host=host, port=port, access_log=False)


@samples_app.command("generate")
def samples_generate(
    out: Path = typer.Option(..., "--out", help="directory to write the set into (created; must be empty)"),
    declarations: int = typer.Option(100, help="how many declarations"),
    seed: int = typer.Option(1, help="the same seed makes the same set, byte for byte"),
    invalid_ratio: float = typer.Option(0.1, min=0.0, max=1.0, help="share of declarations carrying a fault"),
    direction: str = typer.Option("import", help="import, export (CEB.md §8: shipments, returns, summaries) or both"),
) -> None:
    """Write a reproducible set: enterprises.json, messages/ in filing order, expected.jsonl."""
    from schemas.samples import generate

    if out.exists() and any(out.iterdir()):
        typer.echo(f"{out} is not empty; give a new directory", err=True)
        raise typer.Exit(2)
    if direction not in ("import", "export", "both"):
        typer.echo("--direction is import, export or both", err=True)
        raise typer.Exit(2)
    summary = generate(out, declarations=declarations, seed=seed, invalid_ratio=invalid_ratio, direction=direction)
    typer.echo(str(summary))


# A module missing under these names is a broken swx, not a missing extra (see ``replay``).
_SWX_PACKAGES = {"gateway", "schemas", "adapters", "ledger", "mock_customs", "kit"}


@app.command()
def replay(
    paths: list[Path] = typer.Argument(..., help="sample set directories, or folders / files of CEB XML"),
    target: str = typer.Option(..., help="the swx to replay against, e.g. http://127.0.0.1:8000"),
    operator_token: str = typer.Option(..., envvar="SWX_OPERATOR_TOKEN", help="the target's operator token"),
    concurrency: int = typer.Option(8, min=1, help="declarations filed at once"),
    rate: float = typer.Option(None, min=0.1, help="at most this many files per second"),
    shuffle: bool = typer.Option(False, help="file each declaration's messages in random order"),
    wait_final: float = typer.Option(None, help="wait up to this many seconds for every declaration's final state"),
    report: Path = typer.Option(None, help="write a JSON report here"),
    junit: Path = typer.Option(None, help="write a JUnit XML report here"),
    html: Path = typer.Option(None, help="write a self-contained HTML report here"),
    seed: int = typer.Option(None, help="seed of --shuffle"),
    register_senders: bool = typer.Option(
        False, help="plain folders: first register every enterprise the messages name (roles and names from their fields)"),
) -> None:
    """File a sample set (or any CEB XML) against a running swx and compare with its manifest; exit 1 on any mismatch."""
    try:
        from replay import run_replay  # the testers' client: an optional part, with its own dependencies
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in _SWX_PACKAGES or (exc.name or "").startswith("replay."):
            raise  # a broken module of swx itself, not a missing extra
        typer.echo(f"swx replay needs the 'tools' extra ({exc}): pip install -e '.[tools]'", err=True)
        raise typer.Exit(2) from None

    raise typer.Exit(run_replay(
        paths, target=target, operator_token=operator_token, concurrency=concurrency, rate=rate, shuffle=shuffle,
        wait_final=wait_final, report=report, junit=junit, html=html, seed=seed, register_senders=register_senders,
    ))


if __name__ == "__main__":  # pragma: no cover
    app()
