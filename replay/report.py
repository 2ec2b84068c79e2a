"""Machine-readable reports: everything as JSON, and JUnit XML for CI.

JUnit: one ``testsuite`` for files and one for declarations, one ``testcase`` each. A mismatch is a
``failure`` (so the failure count is the mismatch count); a file that could not be filed while no
manifest judges it is an ``error``; declarations not compared (no --wait-final) are ``skipped``.
Text from the target goes through :func:`xml_text` first: XML 1.0 cannot carry most control characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from .compare import describe_declaration, describe_expect, describe_file
from .records import ReplayResult

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    """``value`` as text XML 1.0 can hold: characters it forbids become U+FFFD."""
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def write_json(result: ReplayResult, summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_dict(summary), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def junit_tree(result: ReplayResult) -> ET.ElementTree:
    suites = ET.Element("testsuites", name="swx replay")
    files = ET.SubElement(suites, "testsuite", name="files")
    wait = result.options.get("waitFinal")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    suite_counts: list[tuple[ET.Element, dict[str, int], float]] = []

    own = dict.fromkeys(counts, 0)
    seconds = 0.0
    for f in result.files:
        elapsed = (f.latency_ms or 0.0) / 1000
        seconds += elapsed
        case = ET.SubElement(files, "testcase", classname=f"files.{f.item.message_type or 'unknown'}",
                             name=xml_text(f.item.file), time=f"{elapsed:.3f}")
        own["tests"] += 1
        if f.mismatch is not None:
            own["failures"] += 1
            fail = ET.SubElement(case, "failure", type="mismatch", message=xml_text(f.mismatch))
            fail.text = xml_text(f"expected: {describe_expect(f.item.expect)}\ngot: {describe_file(f)}\n"
                                 f"HTTP status: {f.status}\nresponse: {f.excerpt or f.message or '-'}")
        elif f.outcome == "error":
            own["errors"] += 1
            err = ET.SubElement(case, "error", type="not-filed", message=xml_text(f.message))
            err.text = xml_text(f.excerpt or f.message)
        if f.excerpt or f.message:
            ET.SubElement(case, "system-out").text = xml_text(f"{describe_file(f)}\n{f.excerpt or f.message}")
    suite_counts.append((files, own, seconds))

    if result.declarations:
        decls = ET.SubElement(suites, "testsuite", name="declarations")
        own = dict.fromkeys(counts, 0)
        seconds = 0.0
        for d in result.declarations:
            elapsed = d.waited_s or 0.0
            seconds += elapsed
            case = ET.SubElement(decls, "testcase", classname="declarations", name=xml_text(d.item.key), time=f"{elapsed:.3f}")
            own["tests"] += 1
            if not d.compared:
                own["skipped"] += 1
                ET.SubElement(case, "skipped", message="not compared: --wait-final was not given")
            elif d.mismatch is not None:
                own["failures"] += 1
                fail = ET.SubElement(case, "failure", type="mismatch", message=xml_text(d.mismatch))
                fail.text = xml_text(f"expected: {describe_expect(d.item.expect)}\ngot: {describe_declaration(d, wait)}\n"
                                     f"reasons: {' | '.join(d.reasons) or '-'}")
            if d.reasons or d.note:
                ET.SubElement(case, "system-out").text = xml_text("\n".join([*d.reasons, *([d.note] if d.note else [])]))
        suite_counts.append((decls, own, seconds))

    for suite, own, seconds in suite_counts:
        for k, v in own.items():
            suite.set(k, str(v))
            counts[k] += v
        suite.set("time", f"{seconds:.3f}")
        suite.set("timestamp", result.started_at[:19])
        suite.set("hostname", xml_text(result.target))
    for k, v in counts.items():
        suites.set(k, str(v))
    suites.set("time", f"{result.duration_s:.3f}")
    ET.indent(suites, space="  ")
    return ET.ElementTree(suites)


def write_junit(result: ReplayResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
