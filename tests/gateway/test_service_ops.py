"""Running the service: health, metrics, OpenAPI, request ids, migrations and the CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from typer.testing import CliRunner

from gateway.cli import app as cli


def test_healthz_is_public_and_checks_the_database(swx):
    r = swx.http.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_metrics_need_the_operator_and_count_filings(swx):
    firm = swx.register(["ebp"])
    assert swx.http.get("/metrics").status_code == 401
    assert swx.http.get("/metrics", headers=firm.auth).status_code == 403
    swx.file(firm, b"<broken")
    r = swx.http.get("/metrics", headers=swx.operator)
    assert r.status_code == 200
    assert 'swx_filings_total{message_type="unknown",outcome="400"}' in r.text
    assert "swx_request_seconds_bucket" in r.text


def test_request_id_is_echoed_or_made(swx):
    assert swx.http.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert len(swx.http.get("/healthz").headers["x-request-id"]) == 32


def test_openapi_documents_filing_with_examples(swx):
    spec = swx.http.get("/openapi.json").json()
    post = spec["paths"]["/v1/filings"]["post"]
    assert "application/xml" in post["requestBody"]["content"]
    assert post["responses"]["201"]["content"]["application/json"]["example"]["status"] == "accepted"
    assert post["responses"]["422"]["content"]["application/problem+json"]["example"]["errors"][0]["layer"] == "rule"
    for path in ("/v1/validate", "/v1/filings/{guid}", "/v1/receipts", "/v1/enterprises", "/healthz", "/metrics"):
        assert path in spec["paths"]


def test_unauthenticated_calls_are_refused(swx):
    for method, path in (("POST", "/v1/filings"), ("POST", "/v1/validate"), ("GET", "/v1/receipts"),
                         ("GET", "/v1/filings/X"), ("POST", "/v1/enterprises")):
        r = swx.http.request(method, path)
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = swx.http.request(method, path, headers={"Authorization": "Bearer swx_not-a-key"})
        assert r.status_code == 401


def test_db_upgrade_creates_the_tables(tmp_path, monkeypatch):
    db = tmp_path / "cli.db"
    monkeypatch.setenv("SWX_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    from gateway.config import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    tables = {r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert {"enterprises", "api_keys", "messages", "documents", "document_versions", "receipts", "rejections"} <= tables


def test_swx_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, env=os.environ)
    assert out.returncode == 0
    assert "serve" in out.stdout and "db" in out.stdout


def test_worker_threads_compile_their_schemas_concurrently_at_start_up():
    """A fresh process compiling in several threads at once (as the validation pool does at start-up)."""
    code = (
        "import concurrent.futures as f, threading\n"
        "from gateway.intake.validate import thread_schemas\n"
        "ready = threading.Barrier(8)\n"  # all eight at once: a fast compile must not let one thread take every task
        "def compile_together():\n"
        "    ready.wait(30)\n"
        "    return thread_schemas()\n"
        "with f.ThreadPoolExecutor(8) as pool:\n"
        "    done = [x.result() for x in [pool.submit(compile_together) for _ in range(8)]]\n"
        "print(len({id(p[0]) for p in done}))\n"
    )
    for _ in range(10):  # the race it guards against showed in about one start in three
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
        assert out.returncode == 0, out.stderr[-2000:]
        assert int(out.stdout) >= 2  # several threads, each with its own compiled schema
