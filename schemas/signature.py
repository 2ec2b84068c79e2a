"""Enveloped XML-DSig over a whole CEB message (CEB.md §6), RSA-SHA1 with C14N 1.0.

Customs accepts SM2-with-SM3 (preferred) or RSA-SHA1. We sign with RSA-SHA1 because ``cryptography``
has no SM2; SM2-SM3 signatures are recognised and their SM3 digest is checked, but their signature
value cannot be verified here and ``verify`` says so instead of failing hard.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import random
from copy import deepcopy
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree

from schemas.catalog import DS_NS

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_COMMENTS = C14N + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = DS_NS + "enveloped-signature"
RSA_SHA1 = DS_NS + "rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA1 = DS_NS + "sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# Both spellings of the national algorithms occur in the wild (CEB.md §6).
SM2_SM3 = ("http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3", DS_NS + "sm2-sm3")
SM3 = ("http://www.chinaport.gov.cn/2022/04/xmldsig#sm3", DS_NS + "sm3")

_RSA_METHODS = {RSA_SHA1: hashes.SHA1, RSA_SHA256: hashes.SHA256}
_DIGESTS = {SHA1: "sha1", SHA256: "sha256", **{u: "sm3" for u in SM3}}
_C14N_MODES = {C14N: (False, False), C14N_COMMENTS: (False, True), EXC_C14N: (True, False)}


def _q(tag: str) -> str:
    return f"{{{DS_NS}}}{tag}"


# --- test identity ----------------------------------------------------------------------------


def _is_probable_prime(n: int, rng: random.Random) -> bool:
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(40):  # Miller-Rabin
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % q for q in range(3, int(p**0.5) + 1, 2))]


def _prime(rng: random.Random, bits: int, e: int) -> int:
    while True:
        # top two bits set so that p*q has exactly 2*bits bits
        n = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if (n - 1) % e and _is_probable_prime(n, rng):
            return n


@functools.cache
def test_signing_identity() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An RSA-2048 key and a self-signed certificate for tests and generated messages.

    Made once per process, from a fixed seed so that signed messages are byte-identical across runs
    too (PKCS#1 v1.5 signatures are deterministic). A test key only: never use it for real traffic.
    """
    rng = random.Random("swx test signing identity")
    e = 65537
    p, q = _prime(rng, 1024, e), _prime(rng, 1024, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    key = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    ).private_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swx test"),
        x509.NameAttribute(NameOID.COMMON_NAME, "swx test signer"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(rng.getrandbits(63) | 1 << 62)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2049, 12, 31, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    return key, cert


test_signing_identity.__test__ = False  # not a pytest test, whatever module imports it


# --- signing ----------------------------------------------------------------------------------


def _c14n(node: etree._Element | etree._ElementTree, exclusive: bool = False, comments: bool = False) -> bytes:
    return etree.tostring(node, method="c14n", exclusive=exclusive, with_comments=comments)


def _enveloped_octets(signature: etree._Element, exclusive: bool = False, comments: bool = False) -> bytes:
    """The document without ``signature``, canonicalised: what Reference URI="" + enveloped digests."""
    steps, node = [], signature
    while node.getparent() is not None:  # where the signature sits, as child indexes from the root
        steps.append(node.getparent().index(node))
        node = node.getparent()
    copy = deepcopy(signature.getroottree())
    sig = copy.getroot()
    for i in reversed(steps):
        sig = sig[i]
    # Only the element goes; the text after it stays (lxml would drop the tail with the element).
    prev, parent = sig.getprevious(), sig.getparent()
    if sig.tail:
        if prev is not None:
            prev.tail = (prev.tail or "") + sig.tail
        else:
            parent.text = (parent.text or "") + sig.tail
    parent.remove(sig)
    return _c14n(copy, exclusive, comments)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign(root: etree._Element, key: rsa.RSAPrivateKey, cert: x509.Certificate,
         before: etree._Element | None = None) -> None:
    """Append an enveloped RSA-SHA1 ``ds:Signature`` as the last child of ``root``, or insert it
    just before the child ``before``.

    In import messages the schema puts it after ``ExtendMessage``, i.e. last; export puts it before
    ``ExtendMessage`` (CEB.md §8.1). When ``root`` is pretty-printed, the signature is indented to
    match before anything is hashed.
    """
    sig = etree.Element(_q("Signature"), nsmap={"ds": DS_NS})
    if before is None:
        root.append(sig)
    else:
        before.addprevious(sig)
    info = etree.SubElement(sig, _q("SignedInfo"))
    etree.SubElement(info, _q("CanonicalizationMethod"), Algorithm=C14N)
    etree.SubElement(info, _q("SignatureMethod"), Algorithm=RSA_SHA1)
    ref = etree.SubElement(info, _q("Reference"), URI="")
    etree.SubElement(etree.SubElement(ref, _q("Transforms")), _q("Transform"), Algorithm=ENVELOPED)
    etree.SubElement(ref, _q("DigestMethod"), Algorithm=SHA1)
    digest = etree.SubElement(ref, _q("DigestValue"))
    value = etree.SubElement(sig, _q("SignatureValue"))
    key_info = etree.SubElement(sig, _q("KeyInfo"))
    etree.SubElement(key_info, _q("KeyName")).text = format(cert.serial_number, "x")
    x509_data = etree.SubElement(key_info, _q("X509Data"))
    etree.SubElement(x509_data, _q("X509Certificate")).text = _b64(cert.public_bytes(Encoding.DER))

    indent = root.text if root.text and not root.text.strip() else None
    if indent is not None and len(root) > 1:
        etree.indent(sig, space=indent.lstrip("\n"), level=1)
        prev = sig.getprevious()
        sig.tail, prev.tail = prev.tail, indent

    digest.text = _b64(hashlib.sha1(_enveloped_octets(sig)).digest())
    value.text = _b64(key.sign(_c14n(info), padding.PKCS1v15(), hashes.SHA1()))


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    reason: str
    certificate: x509.Certificate | None = None
    # Machine-readable outcome: ok, missing, malformed, unsupported, unverifiable (SM2),
    # digest-mismatch, bad-signature, no-certificate, expired.
    code: str = ""


def _fail(code: str, reason: str, cert: x509.Certificate | None = None) -> VerifyResult:
    return VerifyResult(False, reason, cert, code)


def _algorithm(parent: etree._Element, tag: str) -> str | None:
    node = parent.find(_q(tag))
    return None if node is None else node.get("Algorithm")


def verify(root: etree._Element, *, at: dt.datetime | None = None) -> VerifyResult:
    """Check the enveloped signature of the message ``root``.

    Recomputes the reference digest over the document minus the signature and checks the
    signature value with the certificate embedded in ``KeyInfo``. With ``at``, the certificate must
    also be valid at that moment (no wall clock is read otherwise).
    """
    sig = root.find(_q("Signature"))
    if sig is None:
        return _fail("missing", "the message carries no ds:Signature")
    info = sig.find(_q("SignedInfo"))
    ref = info.find(_q("Reference")) if info is not None else None
    value_node = sig.find(_q("SignatureValue"))
    if ref is None or value_node is None or ref.find(_q("DigestValue")) is None:
        return _fail("malformed", "ds:Signature lacks SignedInfo/Reference/DigestValue or SignatureValue")

    c14n_alg = _algorithm(info, "CanonicalizationMethod")
    sig_alg = _algorithm(info, "SignatureMethod")
    digest_alg = _algorithm(ref, "DigestMethod")
    if c14n_alg not in _C14N_MODES:
        return _fail("unsupported", f"unsupported canonicalisation method {c14n_alg!r}")
    if sig_alg not in _RSA_METHODS and sig_alg not in SM2_SM3:
        return _fail("unsupported", f"unsupported signature method {sig_alg!r}")
    if digest_alg not in _DIGESTS:
        return _fail("unsupported", f"unsupported digest method {digest_alg!r}")
    if ref.get("URI") != "":
        return _fail("unsupported", f"only Reference URI=\"\" (the whole message) is supported, not {ref.get('URI')!r}")
    transforms = [t.get("Algorithm") for t in ref.iterfind(f"{_q('Transforms')}/{_q('Transform')}")]
    if ENVELOPED not in transforms:
        return _fail("unsupported", "the Reference lacks the enveloped-signature transform")
    ref_c14n = [t for t in transforms if t != ENVELOPED]
    if any(t not in _C14N_MODES for t in ref_c14n):
        return _fail("unsupported", f"unsupported transform in {transforms!r}")

    cert = None
    cert_node = sig.find(f"{_q('KeyInfo')}/{_q('X509Data')}/{_q('X509Certificate')}")
    if cert_node is not None and (cert_node.text or "").strip():
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode("".join(cert_node.text.split())))
        except (ValueError, binascii.Error):
            cert = None

    # Reference: the message without the signature, canonicalised (C14N 1.0 unless a transform says).
    exclusive, comments = _C14N_MODES[ref_c14n[-1]] if ref_c14n else (False, False)
    try:
        digest = hashlib.new(_DIGESTS[digest_alg], _enveloped_octets(sig, exclusive, comments)).digest()
        expected = base64.b64decode("".join((ref.findtext(_q("DigestValue")) or "").split()), validate=True)
    except (ValueError, binascii.Error):
        return _fail("malformed", "DigestValue is not valid base64", cert)
    if digest != expected:
        return _fail("digest-mismatch", "digest mismatch: the message was changed after it was signed", cert)

    if sig_alg in SM2_SM3:
        return _fail(
            "unverifiable",
            "SM2-SM3 signature recognised and its SM3 digest matches, but SM2 signature values cannot be verified here",
            cert,
        )
    if cert is None:
        return _fail("no-certificate", "KeyInfo carries no readable X509Certificate to check the signature with")
    if at is not None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            return _fail("expired", f"the signing certificate is not valid at {at.isoformat()}", cert)
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return _fail("unsupported", f"{sig_alg} needs an RSA certificate", cert)
    try:
        signature = base64.b64decode("".join((value_node.text or "").split()), validate=True)
        exclusive, comments = _C14N_MODES[c14n_alg]
        public_key.verify(signature, _c14n(info, exclusive, comments), padding.PKCS1v15(), _RSA_METHODS[sig_alg]())
    except (ValueError, binascii.Error):
        return _fail("bad-signature", "bad signature value: SignatureValue is not valid base64", cert)
    except InvalidSignature:
        return _fail("bad-signature", "bad signature value: it does not verify with the certificate's key", cert)
    return VerifyResult(True, "signature valid", cert, "ok")
