"""The X.509 certificates whose signatures an enterprise will send: stored now, checked at intake later."""

from __future__ import annotations

import re
from datetime import UTC

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")


def pem_problem(pem: str) -> str | None:
    """Why ``pem`` is not exactly one PEM X.509 certificate, or None when it is one."""
    blocks = _BLOCK.findall(pem)
    if any("PRIVATE KEY" in b for b in blocks):
        return "holds a private key: send only the certificate, never its key"
    if blocks != ["CERTIFICATE"]:
        return "must be exactly one PEM block '-----BEGIN CERTIFICATE-----' … '-----END CERTIFICATE-----'"
    try:
        x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        return f"is not a readable X.509 certificate ({exc})"
    return None


def describe(pem: str) -> dict:
    """The certificate as stored in the record: its PEM and what identifies it."""
    cert = x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
    return {
        "pem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "serial": format(cert.serial_number, "X"),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "notBefore": cert.not_valid_before_utc.astimezone(UTC).isoformat(),
        "notAfter": cert.not_valid_after_utc.astimezone(UTC).isoformat(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }
