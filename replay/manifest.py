"""What a replay files: sample sets (docs/testers.md) and plain folders of CEB XML, read into one plan.

A sample set is a directory holding ``expected.jsonl``; anything else is plain XML, filed as is by the
enterprise its ``BaseTransfer/copCode`` names, with no expectations (the report lists outcomes only).
Loading checks the manifest up front -- paths that leave the set, unknown or circular ``after``
references, missing files -- so that a broken set fails before anything reaches the target.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from kit.envelope import EnvelopeError, dxp_payload, is_envelope
from schemas.catalog import CEB_NS

MANIFEST = "expected.jsonl"
# What a file may wait for (schemas/samples/export.py): customs gave the list its invtNo, or a state.
WAIT_STATES = ("listed", "released", "departed", "returned")
_SEQ = re.compile(r"^(\d+)-")
_ROOT = re.compile(r"^CEB(\d{3})Message$")


class ManifestError(ValueError):
    """The sample set cannot be replayed as written; the message names the file and line."""


@dataclass
class FileItem:
    """One message to file."""

    file: str  # as reports show it: the manifest's path, or the path under the folder given
    path: Path  # absolute
    seq: int  # filing order across the whole plan
    group: str  # files of one group are filed one after the other, in seq order
    declaration: str | None  # the manifest's declaration (unique across sources), None for plain files
    message_type: str | None  # "311", …
    sender: str | None  # enterprise code whose key files it
    fault: str | None = None
    expect: dict[str, Any] | None = None  # None: no manifest, outcomes only
    problem: str | None = None  # why it cannot be filed at all (plain file without a readable copCode)
    # Export sets (schemas/samples/export.py): declarations whose state must be reached first, the
    # invtNo stand-ins to replace with the target's, and every declaration the file concerns.
    wait: dict[str, Any] | None = None
    fill: list[dict[str, str]] = field(default_factory=list)
    concerns: list[str] = field(default_factory=list)


@dataclass
class DeclarationItem:
    """One purchase whose final state the manifest predicts."""

    key: str
    ebp_code: str
    order_no: str
    fault: str | None
    after: str | None  # key of the declaration that must be final before this one is filed
    expect: dict[str, Any]
    kind: str = "declaration"  # or "summary": ebp_code is then the agentCode, order_no the copNo


@dataclass
class Plan:
    files: list[FileItem] = field(default_factory=list)
    declarations: dict[str, DeclarationItem] = field(default_factory=dict)
    enterprises: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_manifest(self) -> bool:
        return any(f.expect is not None for f in self.files) or bool(self.declarations)


def load(paths: list[Path]) -> Plan:
    """Read every PATH into one plan; declaration keys get the set's name as prefix when several are given."""
    plan = Plan()
    prefix_needed = len(paths) > 1
    seq_base = 0
    for i, raw in enumerate(paths):
        path = Path(raw).expanduser()
        if not path.exists():
            raise ManifestError(f"{path}: no such file or directory")
        label = path.resolve().name or str(path)
        prefix = f"{label}#{i + 1}/" if prefix_needed else ""
        if path.is_dir() and (path / MANIFEST).is_file():
            _load_set(plan, path, prefix, seq_base)
        else:
            _load_plain(plan, path, prefix, seq_base)
        plan.sources.append(str(path))
        seq_base = max((f.seq for f in plan.files), default=seq_base) + 1
    plan.files.sort(key=lambda f: f.seq)
    return plan


# --- sample sets -----------------------------------------------------------------------------------


def _load_set(plan: Plan, root: Path, prefix: str, seq_base: int) -> None:
    root = root.resolve()
    enterprises_path = root / "enterprises.json"
    if enterprises_path.is_file():
        try:
            enterprises = json.loads(enterprises_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ManifestError(f"{enterprises_path}: not a JSON list of registrations: {exc}") from None
        if not isinstance(enterprises, list) or not all(isinstance(e, dict) for e in enterprises):
            raise ManifestError(f"{enterprises_path}: not a JSON list of registrations")
        plan.enterprises.extend(enterprises)
    else:
        plan.notes.append(f"{root}: no enterprises.json; its senders must already be registered at the target")

    files: list[FileItem] = []
    declarations: dict[str, DeclarationItem] = {}
    manifest = root / MANIFEST
    with manifest.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{manifest}:{n}"
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise ManifestError(f"{where}: not JSON: {exc}") from None
            if not isinstance(entry, dict):
                raise ManifestError(f"{where}: not a JSON object")
            kind = entry.get("type")
            if kind == "file":
                files.append(_file_item(entry, root, prefix, seq_base, n, where))
            elif kind in ("declaration", "summary"):
                item = _declaration_item(entry, prefix, where) if kind == "declaration" else _summary_item(entry, prefix, where)
                if item.key in declarations:
                    raise ManifestError(f"{where}: declaration {entry['declaration']!r} appears twice")
                declarations[item.key] = item
            else:
                raise ManifestError(f"{where}: type must be 'file', 'declaration' or 'summary', not {kind!r}")

    for f in files:
        for ref in [*(f.wait or {}).get("declarations", []), *(x.get("declaration") for x in f.fill)]:
            if f"{prefix}{ref}" not in declarations:
                raise ManifestError(f"{manifest}: {f.file} waits for or fills from {ref}, which the set does not hold")
        if f.wait is not None:
            f.wait = {**f.wait, "declarations": [f"{prefix}{x}" for x in f.wait.get("declarations", [])]}
        f.fill = [{**x, "declaration": f"{prefix}{x['declaration']}"} for x in f.fill]
        f.concerns = [f"{prefix}{x}" for x in f.concerns]
    for item in declarations.values():
        if item.after is not None and item.after not in declarations:
            raise ManifestError(f"{manifest}: declaration {item.key} is filed after {item.after}, which the set does not hold")
    _check_cycles(declarations, manifest)
    listed = {f.path for f in files}
    unlisted = sorted(p.name for p in (root / "messages").glob("*.xml") if p.resolve() not in listed) if (root / "messages").is_dir() else []
    if unlisted:
        plan.notes.append(f"{root}: {len(unlisted)} file(s) in messages/ are not in the manifest and were not filed "
                          f"(first: {unlisted[0]})")
    plan.files.extend(files)
    plan.declarations.update(declarations)


def _file_item(entry: dict[str, Any], root: Path, prefix: str, seq_base: int, n: int, where: str) -> FileItem:
    rel = entry.get("file")
    if not isinstance(rel, str) or not rel:
        raise ManifestError(f"{where}: a file line needs 'file'")
    path = (root / rel).resolve()
    if not path.is_relative_to(root):  # a manifest must not send files from elsewhere on this machine
        raise ManifestError(f"{where}: {rel} lies outside the sample set")
    if not path.is_file():
        raise ManifestError(f"{where}: {rel} does not exist")
    expect = entry.get("expect")
    if not isinstance(expect, dict) or expect.get("outcome") not in ("accepted", "rejected"):
        raise ManifestError(f"{where}: expect.outcome must be 'accepted' or 'rejected'")
    seq_match = _SEQ.match(path.name)
    seq = int(seq_match.group(1)) if seq_match else n
    declaration = entry.get("declaration")
    key = f"{prefix}{declaration}" if declaration else None
    group = entry.get("group")
    wait, fill = entry.get("wait"), entry.get("fill") or []
    if wait is not None and not (isinstance(wait, dict) and wait.get("until") in WAIT_STATES
                                 and isinstance(wait.get("declarations"), list)):
        raise ManifestError(f"{where}: wait needs 'declarations' and 'until' (one of {', '.join(WAIT_STATES)})")
    if not isinstance(fill, list) or not all(isinstance(x, dict) and x.get("field") == "invtNo" and x.get("placeholder")
                                             and x.get("declaration") for x in fill):
        raise ManifestError(f"{where}: fill is a list of {{field: invtNo, placeholder, declaration}}")
    concerns = entry.get("declarations") or ([declaration] if declaration else [])
    return FileItem(
        file=f"{prefix}{rel}", path=path, seq=seq_base + seq,
        group=f"{prefix}{group}" if isinstance(group, str) and group else key or f"{prefix}{rel}", declaration=key,
        message_type=_str(entry.get("messageType")), sender=_str(entry.get("sender")), fault=_str(entry.get("fault")),
        expect=expect, wait=wait, fill=list(fill), concerns=[str(c) for c in concerns],
    )


def _declaration_item(entry: dict[str, Any], prefix: str, where: str) -> DeclarationItem:
    name, ebp, order_no = entry.get("declaration"), entry.get("ebpCode"), entry.get("orderNo")
    if not all(isinstance(v, str) and v for v in (name, ebp, order_no)):
        raise ManifestError(f"{where}: a declaration line needs 'declaration', 'ebpCode' and 'orderNo'")
    expect = entry.get("expect")
    if not isinstance(expect, dict) or not isinstance(expect.get("state"), str):
        raise ManifestError(f"{where}: expect.state is missing")
    after = entry.get("after")
    return DeclarationItem(key=f"{prefix}{name}", ebp_code=ebp, order_no=order_no, fault=_str(entry.get("fault")),
                           after=f"{prefix}{after}" if after else None, expect=expect)


def _summary_item(entry: dict[str, Any], prefix: str, where: str) -> DeclarationItem:
    name, agent, cop_no = entry.get("summary"), entry.get("agentCode"), entry.get("copNo")
    if not all(isinstance(v, str) and v for v in (name, agent, cop_no)):
        raise ManifestError(f"{where}: a summary line needs 'summary', 'agentCode' and 'copNo'")
    expect = entry.get("expect")
    if not isinstance(expect, dict) or not isinstance(expect.get("state"), str):
        raise ManifestError(f"{where}: expect.state is missing")
    return DeclarationItem(key=f"{prefix}{name}", ebp_code=agent, order_no=cop_no, fault=_str(entry.get("fault")),
                           after=None, expect=expect, kind="summary")


def _check_cycles(declarations: dict[str, DeclarationItem], manifest: Path) -> None:
    """``after`` chains must end, or the replay would wait for ever."""
    for start in declarations:
        seen, key = set(), start
        while key is not None:
            if key in seen:
                raise ManifestError(f"{manifest}: declarations wait for each other in a circle through {start}")
            seen.add(key)
            key = declarations[key].after


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- plain XML -------------------------------------------------------------------------------------


def _load_plain(plan: Plan, path: Path, prefix: str, seq_base: int) -> None:
    if path.is_dir():
        base = path.resolve()
        found = sorted((p for p in base.rglob("*.xml") if p.is_file()), key=lambda p: p.relative_to(base).as_posix())
        shown = [f"{prefix}{base.name}/{p.relative_to(base).as_posix()}" for p in found]
    else:
        found, shown = [path.resolve()], [f"{prefix}{path.name}"]
    if not found:
        plan.notes.append(f"{path}: no *.xml files")
    for i, (p, name) in enumerate(zip(found, shown)):
        facts = read_facts(p.read_bytes())
        # Files about one order go one after the other (an original before its change); the rest in parallel.
        group = f"{prefix}order:{facts.order_key}" if facts.order_key else f"{prefix}file:{name}"
        plan.files.append(FileItem(file=name, path=p, seq=seq_base + i, group=group, declaration=None,
                                   message_type=facts.message_type, sender=facts.cop_code, problem=facts.problem))


@dataclass
class XmlFacts:
    message_type: str | None = None
    cop_code: str | None = None
    order_key: str | None = None
    problem: str | None = None


def _parser() -> etree.XMLParser:
    # Not kit.xmlsafe.parse_untrusted: that one refuses a DOCTYPE or a deep tree, which is the target's
    # call to make (the sample sets' xml.doctype fault); here only the sender is wanted, and a file whose
    # copCode can be read is filed so that the report shows the target's answer.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False)


def read_facts(data: bytes) -> XmlFacts:
    """Message type, sender and order of a plain file, read without trusting it: no DTD, no entities,
    no network. A ``DxpMsg`` envelope (as swx tells one: ``kit.envelope``) is opened and the message
    inside is read."""
    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        return XmlFacts(problem=f"cannot tell the sender: not well-formed XML ({exc})")
    if is_envelope(root):
        try:
            root = etree.fromstring(dxp_payload(root), _parser())
        except (EnvelopeError, etree.XMLSyntaxError, ValueError) as exc:
            return XmlFacts(problem=f"cannot tell the sender: the DxpMsg Data is not Base64 XML ({exc})")
    match = _ROOT.match(etree.QName(root).localname)
    cop_code = (root.findtext(f"{{{CEB_NS}}}BaseTransfer/{{{CEB_NS}}}copCode") or "").strip() or None
    # orderNo alone: the waybill does not name the platform; two platforms sharing a number only serialise
    order_no = (root.findtext(f".//{{{CEB_NS}}}orderNo") or "").strip() or None
    facts = XmlFacts(message_type=match.group(1) if match else None, cop_code=cop_code, order_key=order_no)
    if cop_code is None:
        facts.problem = "cannot tell the sender: no BaseTransfer/copCode"
    return facts
