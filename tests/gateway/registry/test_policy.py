"""The sharing policy file, checked when loaded and at start-up, and the OpenAPI document's examples
for the registration and registry endpoints."""

from __future__ import annotations

import pytest

from tests.fixtures.registration import POLICY_FILE, REGULATORS, _policy_fields

# ---- the sharing policy file and the OpenAPI document ------------------------------------------------


def test_policy_file_is_checked(tmp_path, monkeypatch):
    from gateway.enterprises.sharing import PolicyError, load_policy

    default = load_policy(POLICY_FILE)
    for regulator in REGULATORS:
        assert set(default.fields_for(regulator)) == _policy_fields(regulator)
    cases = {
        '[customs]\nfields = ["name", "faxNumber"]\n': "faxNumber",
        '[police]\nfields = ["name"]\n': "police",
        '[fx]\nfields = "name"\n': "fields",
        '[fx]\nfield = ["name"]\n': "field",
        '[fx\n': "TOML",
    }
    for text, words in cases.items():
        path = tmp_path / "policy.toml"
        path.write_text(text)
        with pytest.raises(PolicyError, match=words):
            load_policy(path)
    path = tmp_path / "fx-only.toml"
    path.write_text('[fx]\nfields = ["identity"]\n')
    monkeypatch.setenv("SWX_SHARING_POLICY", str(path))
    policy = load_policy()
    assert policy.regulators == ("fx",) and policy.fields_for("fx") == ("customsCode", "uscc", "name")
    assert policy.view("customs", {}, code="X", version=1, status="active") is None
    monkeypatch.setenv("SWX_SHARING_POLICY", str(tmp_path / "missing.toml"))
    with pytest.raises(PolicyError, match="no such file"):
        load_policy()


def test_a_bad_policy_stops_start_up(tmp_path, monkeypatch):
    from gateway.app import create_app
    from gateway.config import Settings
    from gateway.enterprises.sharing import PolicyError

    path = tmp_path / "bad.toml"
    path.write_text('[tax]\nfields = ["bankAccount"]\n')
    monkeypatch.setenv("SWX_SHARING_POLICY", str(path))
    with pytest.raises(PolicyError, match="bankAccount"):
        create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", operator_token="x"))


def test_openapi_shows_examples(swx):
    doc = swx.http.get("/openapi.json").json()
    post = doc["paths"]["/v1/enterprises"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert {"full", "minimal"} <= set(examples) and examples["full"]["value"]["certificates"]
    patch = doc["paths"]["/v1/enterprises/{code}"]["patch"]["requestBody"]["content"]["application/json"]["examples"]
    assert "name" in patch
    for path in ("/v1/registry/enterprises/{code}", "/v1/registry/changes", "/v1/enterprises/{code}/access-log"):
        assert doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["example"], path
    assert doc["paths"]["/v1/enterprises/{code}/keys"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    for name in ("EnterpriseOut", "VersionsOut", "KeysOut", "EnterpriseCreated"):
        assert doc["components"]["schemas"][name].get("examples"), name
