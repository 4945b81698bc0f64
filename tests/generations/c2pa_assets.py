"""C2PA-signed test videos, made at run time: an ES256 root CA and a signing certificate made
with ``cryptography`` (the profile the C2PA SDK accepts: an end-entity certificate, not a CA,
with digitalSignature key usage and the emailProtection extended key usage, chained to the
root), and ``c2pa-python``'s Builder embedding a manifest with a "created by AI" action."""

from __future__ import annotations

import datetime
import io
import struct
from dataclasses import dataclass

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AI_CREATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_NO_USAGE = dict(
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes  # the signing certificate, then the root
    key_pem: bytes
    root_pem: bytes  # what a verifier trusts


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def signing_identity(organization: str = "OpenAI", common_name: str = "Video Signer") -> SigningIdentity:
    """A fresh root CA and a signing certificate for ``organization`` (what readers call the issuer)."""
    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_valid_before": now - datetime.timedelta(days=1), "not_valid_after": now + datetime.timedelta(days=30)}
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("MediaRouter Test Root CA", "MediaRouter Tests")
    root = (
        x509.CertificateBuilder(subject_name=root_name, issuer_name=root_name, **valid)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **_NO_USAGE), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder(subject_name=_name(common_name, organization), issuer_name=root_name, **valid)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **_NO_USAGE), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return SigningIdentity(
        chain_pem=cert.public_bytes(pem) + root.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        root_pem=root.public_bytes(pem),
    )


def sign_mp4(data: bytes, identity: SigningIdentity, *, generator: str = "Sora", title: str = "video.mp4") -> bytes:
    """``data`` (an MP4) with a C2PA manifest embedded, signed by ``identity``."""
    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.key_pem, None)
    )
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "2.0"}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": AI_CREATED}]},
            }
        ],
    }
    out = io.BytesIO()
    with signer, c2pa.Builder(manifest) as builder:
        builder.sign(signer, "video/mp4", io.BytesIO(data), out)
    return out.getvalue()


def _mdat_offset(data: bytes) -> int:
    """Where the top-level ``mdat`` box's payload starts (walking the MP4's boxes)."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
            header = 16
        if kind == b"mdat":
            return at + header
        if size < header:
            break
        at += size
    raise ValueError("no mdat box")


def tampered(signed: bytes) -> bytes:
    """``signed`` with one byte of its media data changed (what any edit after signing does)."""
    at = _mdat_offset(signed) + 64
    changed = bytearray(signed)
    changed[at] ^= 0xFF
    return bytes(changed)
