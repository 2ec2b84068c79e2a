"""One way to write and read a moment: aware UTC inside, ISO 8601 out, Beijing time on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8))  # CEB timestamps are China Standard Time


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` with its zone: SQLite hands back naive UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with the offset, or None."""
    return None if moment is None else aware(moment).isoformat()
