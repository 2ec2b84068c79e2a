"""The signer signs the builder's messages for real: signatures verify (also after reparsing, in
GB18030, and with xmlsec1), and every change to a signed message is caught."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from schemas import signature  # (not `from … import test_signing_identity`: pytest would collect it)
from schemas.catalog import DS_NS, FILED
from tests.fixtures.messages import C, _assert_valid, build

# --- signature --------------------------------------------------------------------------------


def _signed(code: str = "621") -> etree._Element:
    return etree.fromstring(build(code, 21))


def test_signature_verifies_and_reports_the_certificate():
    root = _signed()
    result = signature.verify(root)
    assert result.ok and result.code == "ok", result.reason
    _, cert = signature.test_signing_identity()
    assert result.certificate == cert
    assert root.findtext(f".//{{{DS_NS}}}KeyName") == format(cert.serial_number, "x")
    assert root[-1].tag == f"{{{DS_NS}}}Signature"  # last: after BaseTransfer / ExtendMessage
    assert signature.verify(root, at=cert.not_valid_before_utc.replace(year=2030)).ok
    assert signature.verify(root, at=cert.not_valid_after_utc.replace(year=2060)).code == "expired"


@pytest.mark.parametrize("code", ["311", "411", "625", "711"])
def test_signature_is_optional_or_forced(code, import_xsd):
    flipped = build(code, 4, sign=not FILED[code].signed)
    root = etree.fromstring(flipped)
    if FILED[code].signed:  # sign=False: leaves the required signature out, so the XSD rejects it
        assert signature.verify(root).code == "missing" and not import_xsd.validate(root)
    else:
        assert signature.verify(root).ok
        _assert_valid(import_xsd, flipped)


def test_changed_text_is_a_digest_mismatch():
    root = _signed()
    root.find(f".//{C}buyerName").text = "张三"
    result = signature.verify(root)
    assert not result.ok and result.code == "digest-mismatch" and "changed" in result.reason


def test_changed_signature_value_is_a_bad_signature():
    root = _signed()
    node = root.find(f".//{{{DS_NS}}}SignatureValue")
    raw = bytearray(base64.b64decode(node.text))
    raw[10] ^= 0x01
    node.text = base64.b64encode(bytes(raw)).decode()
    result = signature.verify(root)
    assert not result.ok and result.code == "bad-signature" and "signature value" in result.reason
    node.text = "not*base64"
    assert signature.verify(root).code == "bad-signature"


def test_changed_signed_info_is_a_bad_signature():
    root = _signed()
    root.find(f".//{{{DS_NS}}}Reference").set("Id", "r1")  # SignedInfo is covered by the signature value
    assert signature.verify(root).code == "bad-signature"


def test_no_signature():
    result = signature.verify(etree.fromstring(build("311", 21)))
    assert not result.ok and result.code == "missing" and "no ds:Signature" in result.reason


def test_unsupported_and_sm2_algorithms():
    root = _signed()
    method = root.find(f".//{{{DS_NS}}}SignatureMethod")
    method.set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-md5")
    assert signature.verify(root).code == "unsupported"
    for uri in signature.SM2_SM3:
        method.set("Algorithm", uri)
        result = signature.verify(root)
        assert not result.ok and result.code == "unverifiable" and "SM2" in result.reason
    root.find(f".//{C}buyerName").text = "张三"
    assert signature.verify(root).code == "digest-mismatch"  # the SHA-1 digest is still checked


def test_signature_verifies_after_reparsing_and_in_gb18030():
    data = build("623", 6, encoding="GB18030")
    assert data.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
    root = etree.fromstring(data)
    assert signature.verify(root).ok
    utf8 = build("623", 6)
    assert etree.tostring(etree.fromstring(utf8), method="c14n") == etree.tostring(root, method="c14n")


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 not installed")
def test_xmlsec1_agrees(tmp_path):
    """An independent implementation (libxmlsec1) accepts our signatures and rejects tampering."""
    _, cert = signature.test_signing_identity()
    from cryptography.hazmat.primitives.serialization import Encoding

    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    good = tmp_path / "good.xml"
    good.write_bytes(build("621", 31))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(build("621", 31).replace(b"<ceb:appStatus>2<", b"<ceb:appStatus>1<", 1))

    def run(path: Path) -> int:
        return subprocess.run(["xmlsec1", "--verify", "--enabled-reference-uris", "empty",
                               "--pubkey-cert-pem", str(tmp_path / "cert.pem"), str(path)],
                              capture_output=True).returncode

    assert run(good) == 0
    assert run(bad) != 0
