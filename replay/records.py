"""What a replay observed, file by file and declaration by declaration, and the verdict on the whole run.

Plain dataclasses with ``as_dict`` in the report's camelCase, so that the JSON report, the JUnit and
HTML reports and the console summary all read the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .manifest import DeclarationItem, FileItem

FINAL_STATES = frozenset({"released", "rejected", "cancelled", "review", "departed", "returned"})
SUMMARY_FINAL = frozenset({"declared", "rejected"})  # GET /v1/summaries: every declaration exists, or refused


def final_states(kind: str) -> frozenset[str]:
    return SUMMARY_FINAL if kind == "summary" else FINAL_STATES


@dataclass
class FileRecord:
    item: FileItem
    status: int | None = None  # HTTP status; None when no answer came
    latency_ms: float | None = None
    outcome: str = "pending"  # accepted | rejected | error
    layer: str | None = None  # first error's, for rejections
    code: str | None = None
    message: str | None = None  # first error's message, or what went wrong
    excerpt: str | None = None  # the start of the answer's body
    guid: str | None = None
    replayed: bool = False  # answered as an idempotent replay: the target had this exact filing already
    at: float | None = None  # seconds after the start of the run when it was sent
    mismatch: str | None = None  # why it differs from the manifest

    def as_dict(self) -> dict[str, Any]:
        i = self.item
        return {
            "file": i.file, "path": str(i.path), "seq": i.seq, "declaration": i.declaration,
            "messageType": i.message_type, "sender": i.sender, "fault": i.fault, "expect": i.expect,
            "got": self.got(), "httpStatus": self.status, "latencyMs": _round(self.latency_ms), "outcome": self.outcome,
            "layer": self.layer, "code": self.code, "message": self.message, "excerpt": self.excerpt, "guid": self.guid,
            "idempotentReplay": self.replayed, "at": _round(self.at, 4), "mismatch": self.mismatch,
        }

    def got(self) -> dict[str, Any]:
        """The answer in the manifest's terms."""
        out: dict[str, Any] = {"outcome": self.outcome}
        if self.outcome != "accepted":
            out.update(httpStatus=self.status, layer=self.layer, code=self.code)
        if self.outcome == "error":
            out["message"] = self.message
        return out


@dataclass
class DeclarationRecord:
    item: DeclarationItem
    state: str | None = None  # last state seen; None when the target never knew the declaration
    code: str | None = None  # code that begins the first reason
    reasons: list[str] = field(default_factory=list)
    final: bool = False
    waited_s: float | None = None  # from its last filing to its final state (or to giving up)
    final_at: float | None = None  # seconds after the start of the run when the poll ended
    polls: int = 0
    note: str | None = None  # e.g. the `after` declaration was not final in time
    extent: str | None = None  # export: goods returned "partly" or "fully"
    compared: bool = False
    mismatch: str | None = None

    def as_dict(self) -> dict[str, Any]:
        i = self.item
        return {
            "declaration": i.key, "kind": i.kind, "extent": self.extent, "ebpCode": i.ebp_code, "orderNo": i.order_no, "fault": i.fault, "after": i.after,
            "expect": i.expect, "got": self.got(), "state": self.state, "code": self.code, "reasons": self.reasons,
            "final": self.final, "waitedS": _round(self.waited_s, 3),
            "finalAt": _round(self.final_at, 3), "polls": self.polls, "note": self.note,
            "compared": self.compared, "mismatch": self.mismatch,
        }

    def got(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.code:
            out["code"] = self.code
        if self.extent:
            out["extent"] = self.extent
        if not self.final:
            out["final"] = False
        return out


@dataclass
class Mismatch:
    kind: str  # file | declaration
    name: str  # file path as shown, or declaration key
    path: str | None  # the file on disk (files only)
    expected: str
    got: str
    detail: str | None  # what came back: status and error excerpt, or the reasons

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": self.path, "expected": self.expected, "got": self.got,
                "detail": self.detail}


@dataclass
class ReplayResult:
    target: str
    options: dict[str, Any]
    started_at: str
    finished_at: str = ""
    duration_s: float = 0.0
    filing_s: float = 0.0  # first filing sent to last answer received
    has_manifest: bool = False
    compared_declarations: bool = False
    files: list[FileRecord] = field(default_factory=list)
    declarations: list[DeclarationRecord] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> list[FileRecord]:
        """Files that could not be filed at all (no answer, a server error, no key for the sender)."""
        return [f for f in self.files if f.outcome == "error"]

    @property
    def exit_code(self) -> int:
        return 1 if self.mismatches or self.errors else 0

    def as_dict(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {
            "target": self.target, "startedAt": self.started_at, "finishedAt": self.finished_at,
            "durationS": _round(self.duration_s, 3), "filingS": _round(self.filing_s, 3), "options": self.options,
            "manifest": self.has_manifest, "declarationsCompared": self.compared_declarations,
            "exitCode": self.exit_code, "notes": self.notes, "summary": summary,
            "mismatches": [m.as_dict() for m in self.mismatches], "registrations": self.registrations,
            "files": [f.as_dict() for f in self.files], "declarations": [d.as_dict() for d in self.declarations],
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
