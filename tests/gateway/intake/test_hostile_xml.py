"""Hostile XML filed over HTTP is refused quickly, with bounded memory, and without touching the disk
or the network."""

from __future__ import annotations

import errno
import os
import resource
import time

import pytest


@pytest.fixture(scope="module")
def firm(swx):
    return swx.register(["ebp", "ebc"])


def _assert_refused_fast(response, started: float, status: int = 400) -> None:
    elapsed = time.monotonic() - started
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert elapsed < 2.0, f"took {elapsed:.2f}s"


def test_external_entity_to_local_file_is_not_read(swx, firm, tmp_path):
    # A FIFO: if anything opened it for reading, the request would block here until the timeout.
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    body = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{fifo}">]>'
        '<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="x" version="1.0">&x;</ceb:CEB311Message>'
    ).encode()
    started = time.monotonic()
    r = swx.file(firm, body)
    _assert_refused_fast(r, started)
    assert "DTD" in r.json()["detail"]
    with pytest.raises(OSError) as exc:  # no reader ever opened the FIFO
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert exc.value.errno == errno.ENXIO


def test_external_dtd_is_not_loaded(swx, firm, tmp_path):
    fifo = tmp_path / "evil.dtd"
    os.mkfifo(fifo)
    body = f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "file://{fifo}"><r/>'.encode()
    started = time.monotonic()
    _assert_refused_fast(swx.file(firm, body), started)
    with pytest.raises(OSError):
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)


def test_network_entity_is_not_fetched(swx, firm):
    body = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><r>&x;</r>'
    started = time.monotonic()
    _assert_refused_fast(swx.file(firm, body), started)


def test_billion_laughs(swx, firm):
    entities = '<!ENTITY a "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    body = f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]><lolz>&j;</lolz>'.encode()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    _assert_refused_fast(swx.file(firm, body), started)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 50, f"peak memory grew by {grown_mib:.0f} MiB"


def test_doctype_without_entities_is_refused(swx, firm):
    body = b'<?xml version="1.0"?><!DOCTYPE ceb:CEB311Message><ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb"/>'
    r = swx.file(firm, body)
    assert r.status_code == 400
    assert r.json()["errors"][0]["layer"] == "xml"


def test_undeclared_entity_reference(swx, firm):
    r = swx.file(firm, b"<r>&nbsp;</r>")
    assert r.status_code == 400


@pytest.mark.parametrize("depth", [40, 300, 100_000])
def test_deep_nesting(swx, firm, depth):
    body = b"<a>" * depth + b"</a>" * depth
    started = time.monotonic()
    r = swx.file(firm, body)
    _assert_refused_fast(r, started)
    assert "deep" in r.json()["detail"].lower()


def _chunks(total: int, size: int = 1 << 20):
    block = b"<x>" + b"a" * (size - 7) + b"</x>"
    sent = 0
    while sent < total:
        yield block
        sent += len(block)


def test_50_mib_body_declared_length(swx, firm):
    """A body whose Content-Length exceeds the limit is refused before it is read."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    headers = {**firm.auth, "Content-Type": "application/xml", "Content-Length": str(50 * 1024 * 1024)}
    started = time.monotonic()
    try:
        r = swx.http.post("/v1/filings", content=_chunks(50 * 1024 * 1024), headers=headers)
    except Exception as exc:  # the server may close the connection while we are still sending
        pytest.fail(f"no answer to an oversized body: {exc!r}")
    assert r.status_code == 413, r.text
    assert time.monotonic() - started < 10
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 40, f"peak memory grew by {grown_mib:.0f} MiB"


def test_50_mib_body_streamed_without_length(swx, firm):
    """Chunked upload: the server stops reading at the limit."""
    headers = {**firm.auth, "Content-Type": "application/xml"}
    started = time.monotonic()
    try:
        r = swx.http.post("/v1/filings", content=_chunks(50 * 1024 * 1024), headers=headers)
        assert r.status_code == 413, r.text
    except Exception as exc:  # noqa: BLE001 - a reset connection is also a refusal, but say which
        assert "reset" in repr(exc).lower() or "broken" in repr(exc).lower() or "closed" in repr(exc).lower(), repr(exc)
    assert time.monotonic() - started < 20


def test_validate_endpoint_refuses_hostile_xml_with_400(swx, firm):
    body = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    r = swx.file(firm, body, path="/v1/validate")
    assert r.status_code == 400
    assert "root:" not in r.text
