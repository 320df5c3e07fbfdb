"""The web page's HTTPS certificate: a self-signed one made with ``cryptography`` in the
state folder (``naskahd init``, ``naskahd web --make-cert``), or the office's own
(``[web] certificate`` / ``key``). The page shows its SHA-256 fingerprint, for the operator
to compare with what the browser shows the first time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
from pathlib import Path

CERT_NAME = "web-cert.pem"
KEY_NAME = "web-key.pem"
VALID_DAYS = 3650


def default_paths(state: Path) -> tuple[Path, Path]:
    return state / CERT_NAME, state / KEY_NAME


def make_self_signed(cert_path: Path, key_path: Path, hosts: list[str] | None = None) -> str:
    """Write a new key (mode 0600) and a self-signed certificate for ``hosts`` (names or
    addresses; the machine's name and loopback always). Returns the fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from naskahd import durable

    names = {socket.gethostname(), "localhost", "127.0.0.1", "::1", *(hosts or [])}
    alt: list[x509.GeneralName] = []
    for n in sorted(n for n in names if n):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname() or "naskahd"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "naskahd")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    for path in (key_path, cert_path):
        if path.exists():
            os.replace(path, path.with_name(path.name + ".old"))
    durable.write_bytes(key_path, key_pem, mode=0o600)
    durable.write_bytes(cert_path, cert_pem, mode=0o644)
    return fingerprint_of(cert_pem)


def fingerprint_of(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def fingerprint(cert_path: Path) -> str | None:
    try:
        return fingerprint_of(cert_path.read_bytes())
    except (OSError, ValueError):
        return None


def paths_of(cfg: object) -> tuple[Path, Path]:
    """The certificate and key the web page uses: the office's own, or the state folder's."""
    cert, key = getattr(cfg, "web_certificate", None), getattr(cfg, "web_key", None)
    if cert is not None and key is not None:
        return Path(cert), Path(key)
    return default_paths(Path(getattr(cfg, "state")))


def ensure(cfg: object, hosts: list[str] | None = None) -> tuple[Path, str | None, bool]:
    """The state folder's self-signed certificate, made when it is missing (the office's own
    is never touched): (certificate, fingerprint, made now)."""
    cert, key = paths_of(cfg)
    if getattr(cfg, "web_certificate", None) is not None or (cert.exists() and key.exists()):
        return cert, fingerprint(cert), False
    return cert, make_self_signed(cert, key, hosts), True
