"""Settings, read from the environment (prefix ``SWX_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWX_", env_file=".env", extra="ignore")

    # The embedded default needs nothing installed: a SQLite file under ./var.
    database_url: str = "sqlite+aiosqlite:///./var/swx.db"
    # Operator bearer token; generated and printed once at start when unset.
    operator_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000

    max_body_bytes: int = Field(10 * 1024 * 1024, description="largest accepted request body")
    max_xml_depth: int = Field(32, description="deepest element nesting accepted in a filing")
    validation_threads: int = Field(4, description="threads that parse and validate off the event loop")
    db_pool_size: int = 10
    sharing_policy: Path | None = Field(None, description="sharing policy file; default gateway/registry/sharing.toml")
    ledger_key_path: Path = Field(Path("var/ledger.key"), description="Ed25519 key signing ledger checkpoints; made on first start")
    ledger_origin: str = Field("swx.example/ledger", description="the ledger's origin line (and key name)")
    ledger_interval: float = Field(1.0, description="seconds between sequencer runs when nothing wakes it sooner")
    ledger_batch: int = Field(5000, description="most entries sequenced under one checkpoint")
    ledger_linger: float = Field(0.05, description="seconds the sequencer waits for more events once woken (batching)")
    log_level: str = "INFO"
    log_json: bool = False

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
