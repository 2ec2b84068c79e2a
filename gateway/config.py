"""Settings, read from the environment (prefix ``SWX_``) or a ``.env`` file."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWX_", env_file=".env", extra="ignore")

    # The embedded default needs nothing installed: a SQLite file under ./var.
    database_url: str = "sqlite+aiosqlite:///./var/swx.db"
    read_database_url: str | None = Field(
        None, description="a streaming replica of the database for the read views (declarations, deliveries, ledger, "
        "trace, statistics); they may then lag the primary by its delay. Unset: the primary")
    # Operator bearer token; generated and printed once at start when unset.
    operator_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000

    max_body_bytes: int = Field(10 * 1024 * 1024, description="largest accepted request body")
    max_xml_depth: int = Field(32, description="deepest element nesting accepted in a filing")
    validation_threads: int = Field(4, description="threads that parse and validate off the event loop")
    db_pool_size: int = 10
    intake_writers: int = Field(1, description="transactions storing filings at once (each a batch: group commit)")
    intake_batch: int = Field(64, description="most filings stored in one transaction")
    receipt_writers: int = Field(1, description="transactions storing regulators' receipts at once (group commit)")
    receipt_batch: int = Field(32, description="most receipt messages stored in one transaction")
    db_pre_ping: bool = Field(False, description="test each pooled connection before use (one more round trip per request)")
    auth_cache_seconds: float = Field(
        2.0, description="how long a process remembers a known API key (0: look it up on every request)"
    )
    sharing_policy: Path | None = Field(None, description="sharing policy file; default gateway/enterprises/sharing.toml")
    ledger_key_path: Path = Field(Path("var/ledger.key"), description="Ed25519 key signing ledger checkpoints; made on first start")
    ledger_origin: str = Field("swx.example/ledger", description="the ledger's origin line (and key name)")
    ledger_interval: float = Field(1.0, description="seconds between sequencer runs when nothing wakes it sooner")
    ledger_batch: int = Field(5000, description="most entries sequenced under one checkpoint")
    ledger_linger: float = Field(0.05, description="seconds the sequencer waits for more events once woken (batching)")
    # Routing and delivery to the regulators (docs/regulators.md).
    routes: Path | None = Field(None, description="routing table file; default gateway/routing/routes.toml")
    public_url: str | None = Field(None, description="how regulators reach this window; default http://HOST:PORT")
    delivery_token: str | None = Field(None, description="bearer token on deliveries; default derived from the operator token")
    dispatch: bool = Field(True, description="run the dispatcher inside swx serve (else run swx worker)")
    mock_regulators: bool = Field(True, description="run the regulator stand-ins: swx serve starts them as their own process")
    mock_mounted: bool = Field(False, description="mount the stand-ins inside the window at /mock instead (one process: tests)")
    regulators_url: str | None = Field(
        None, description="where regulators whose route names no url are reached, as {url}/{name}: stand-ins or "
        "regulators running elsewhere (swx serve then starts none); unset: the stand-ins swx serve starts",
    )
    regulators_port: int | None = Field(None, description="port of the stand-ins' process swx serve starts; default SWX_PORT + 100")
    delivery_timeout: float = 10.0
    delivery_max_attempts: int = Field(8, description="attempts before a delivery is dead")
    delivery_backoff: float = Field(0.5, description="first retry delay in seconds; doubles per attempt, with jitter")
    delivery_backoff_cap: float = 300.0
    delivery_concurrency: int = 32
    log_level: str = "INFO"
    log_json: bool = False

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def regulators_base(self) -> str:
        """Where routes without a url deliver: ``{this}/{regulator}`` (``swx worker`` finds the stand-ins
        that ``swx serve`` started from the same settings)."""
        if self.regulators_url:
            return self.regulators_url.rstrip("/")
        if self.mounts_regulators:
            return self.base_url() + "/mock"
        return f"http://127.0.0.1:{self.stand_ins_port()}"

    def stand_ins_port(self) -> int:
        """The port of the stand-ins' process ``swx serve`` starts."""
        return self.regulators_port or self.port + 100

    @property
    def mounts_regulators(self) -> bool:
        """The stand-ins run inside the app, at ``/mock``."""
        return self.mock_regulators and self.mock_mounted and not self.regulators_url

    @property
    def starts_regulators(self) -> bool:
        """``swx serve`` starts the stand-ins as their own process."""
        return self.mock_regulators and not self.mock_mounted and not self.regulators_url

    def effective_delivery_token(self, operator_token: str) -> str:
        """The configured delivery token, else one derived from the operator token (so that ``swx
        worker`` processes and the stand-ins agree without another secret to share)."""
        if self.delivery_token:
            return self.delivery_token
        return "swx_dl_" + hashlib.sha256(b"swx delivery token\0" + operator_token.encode()).hexdigest()[:40]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite or ":memory:" in self.database_url:
            return None
        return Path(self.database_url.split("///", 1)[1])


@lru_cache
def get_settings() -> Settings:
    return Settings()
