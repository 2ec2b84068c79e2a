"""Settings of the regulator stand-ins (environment prefix ``SWX_MOCK_``).

One settings object serves all four stand-ins: each reads the fields it needs through
``ctx.settings``, so that a drill or a test tunes every regulator from one place.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MockSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWX_MOCK_", extra="ignore")

    # --- the window, and how to reach it ---
    gateway_url: str = "http://127.0.0.1:8000"
    keys: dict[str, str] = Field(default_factory=dict)  # regulator name -> its API key at the window
    delivery_token: str | None = None  # POST /messages and /registrations must carry it when set
    operator_token: str | None = None  # the admin endpoints are refused while it is unset
    max_body_bytes: int = 10 * 1024 * 1024  # a DxpMsg of 100 documents stays far below this
    receipt_backoff: float = 0.2  # longest first retry wait of the receipt sender (full jitter), doubled per attempt
    receipt_backoff_max: float = 30.0  # longest retry wait
    # Receipts in flight at once; each document's still go in order (sender.ReceiptSender). Receipts per
    # second ≈ senders ÷ the window's time per receipt: 16 at 20 ms is ~800/s, ~130 clean
    # declarations/s for customs (six receipts each). Raise it when the window is slower.
    senders: int = Field(16, ge=1, le=1024)
    # Most return nodes in one receipt message: ready receipts of one type go out merged when the
    # senders are busy (base.Context); 1 posts each receipt on its own. A CEB receipt carries ≤ 100.
    merge: int = Field(100, ge=1, le=100)

    # --- customs ---
    match_wait: float = 30.0  # seconds a list waits for its order, payment and waybill
    step_delay: float = Field(0.2, ge=0.0)  # seconds between 120 -> 399 -> 800 (0: no wait, order still kept)
    per_transaction_limit: Decimal = Decimal(5000)  # CEB.md §4
    annual_limit: Decimal = Decimal(26000)

    # --- inspection, tax, fx ---
    tables_dir: Path | None = None
    fx_rate: Decimal = Decimal("7.10")  # CNY per USD
    fx_quota_usd: Decimal = Decimal(50000)
    inspection_delay: float = 0.5
    tax_wait: float = 30.0

    def window_url(self, path: str) -> str:
        """``path`` on the window."""
        return self.gateway_url.rstrip("/") + "/" + path.lstrip("/")

    def auth_headers(self, regulator: str) -> dict[str, str]:
        """The ``regulator``'s key at the window as a bearer token, or nothing when it has none."""
        key = self.keys.get(regulator)
        return {"Authorization": f"Bearer {key}"} if key else {}
