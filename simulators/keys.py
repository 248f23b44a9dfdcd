"""Every key and certificate the gateway and the simulated banks need, created once.

:func:`ensure_keys` writes them under ``keys_dir`` at exactly the paths ``config/banks.toml`` names
(those paths are relative to the config's ``keys_dir``; they are re-rooted under the ``keys_dir``
given here, so tests can use a temporary directory with the real config). Files that exist are
kept: running it again changes nothing. Test keys only, never production keys.

Layout (``<bank>`` is each bank id; paths named in ``banks.toml`` win where they differ)::

    ca/tls-ca.crt, ca/tls-ca.key        the TLS CA: issues bank server certs and the gateway client cert
    ca/sign-ca.crt, ca/sign-ca.key      issues the signing certificates
    gateway/sign.key, gateway/sign.crt  the gateway's signing key (cms / xmldsig), pinned by every bank
    gateway/tls.crt, gateway/tls.key    the gateway's TLS client certificate
    gateway/ssh_client_key(.pub)        the gateway's SSH key (OpenSSH format)
    gateway/sm2.key, gateway/sm2.pub    SM2 key pair (gmssl hex) when a bank uses the sm2 scheme
    <bank>/sign.key, <bank>/sign.crt    the bank's signing key and certificate (pinned by the gateway);
                                        for an sm2 bank: <bank>/sm2.key and the public key at keys.bank_cert
    <bank>/tls.crt, <bank>/tls.key      the bank's TLS server certificate (pinned by the gateway)
    <bank>/ssh_host_key(.pub)           the bank's SSH host key (OpenSSH format, pinned by the gateway)
    <bank>/sftp_password                the SFTP password for the bank's user (public-key auth also works)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from formats.signature.keys import make_leaf, make_sm2_keypair, make_test_ca


@dataclass(frozen=True)
class BankKeyPaths:
    """One simulated bank's own keys and what it pins or trusts of the gateway."""

    bank_id: str
    sign_key: Path
    sign_cert: Path  # for sm2: the public key (gmssl hex)
    tls_cert: Path
    tls_key: Path
    ssh_host_key: Path
    ssh_host_pub: Path
    sftp_password: Path
    gateway_sign_cert: Path  # pinned: the only signer accepted (for sm2: the gateway's public key)
    tls_client_ca: Path  # trusted: issues the gateway's TLS client certificate
    gateway_ssh_pub: Path  # authorised for public-key login


@dataclass(frozen=True)
class KeyPaths:
    keys_dir: Path
    tls_ca_cert: Path
    tls_ca_key: Path
    sign_ca_cert: Path
    gateway_sign_key: Path
    gateway_sign_cert: Path
    gateway_tls_cert: Path
    gateway_tls_key: Path
    gateway_ssh_key: Path
    gateway_ssh_pub: Path
    gateway_sm2_key: Path
    gateway_sm2_pub: Path
    banks: dict[str, BankKeyPaths]

    def bank(self, bank_id: str) -> BankKeyPaths:
        return self.banks[bank_id]


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Atomic write (temporary name, then rename); private files are mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _missing(*paths: Path) -> bool:
    return not all(p.exists() for p in paths)


def _ca(key: Path, cert: Path, cn: str) -> tuple[bytes, bytes]:
    if _missing(key, cert):
        k, c = make_test_ca(cn)
        _write(key, k, private=True)
        _write(cert, c)
    return key.read_bytes(), cert.read_bytes()


def _leaf(ca: tuple[bytes, bytes], key: Path, cert: Path, cn: str, **kw) -> None:
    if _missing(key, cert):
        k, c = make_leaf(ca[0], ca[1], cn, **kw)
        _write(key, k, private=True)
        _write(cert, c)


def _ssh_key(key: Path, pub: Path, comment: str) -> None:
    if _missing(key, pub):
        k = ed25519.Ed25519PrivateKey.generate()
        _write(key, k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption()), private=True)
        line = k.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        _write(pub, line + b" " + comment.encode() + b"\n")


def _sm2(key: Path, pub: Path) -> None:
    if _missing(key, pub):
        private_hex, public_hex = make_sm2_keypair()
        _write(key, private_hex.encode() + b"\n", private=True)
        _write(pub, public_hex.encode() + b"\n")


def ensure_keys(keys_dir: Path | str, config) -> KeyPaths:
    """Create (once) every key and certificate for the gateway and each bank in ``config``.

    :param keys_dir: where to write; ``config.keys_dir`` (default ``var/keys``) for the real thing.
    :param config: a loaded :class:`gateway.config.model.Config` (its bank paths say where files go).
    :returns: :class:`KeyPaths`, every path absolute.
    :raises ValueError: two banks' configured paths would need different contents at one place.
    """
    root = Path(keys_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)

    def at(configured: Path) -> Path:
        try:
            return root / Path(configured).relative_to(config.keys_dir)
        except ValueError:
            return Path(configured)  # an absolute path outside keys_dir: used as configured

    tls_ca = _ca(root / "ca/tls-ca.key", root / "ca/tls-ca.crt", "yikatong test TLS CA")
    sign_ca = _ca(root / "ca/sign-ca.key", root / "ca/sign-ca.crt", "yikatong test signing CA")
    gw_tls_key, gw_tls_cert = root / "gateway/tls.key", root / "gateway/tls.crt"
    gw_ssh = root / "gateway/ssh_client_key"
    gw_sign_key, gw_sign_cert = root / "gateway/sign.key", root / "gateway/sign.crt"
    gw_sm2_key, gw_sm2_pub = root / "gateway/sm2.key", root / "gateway/sm2.pub"
    used: dict[Path, str] = {}

    def claim(path: Path, what: str) -> Path:
        if used.setdefault(path, what) != what:
            raise ValueError(f"{path}: configured for both {used[path]} and {what}")
        return path

    banks: dict[str, BankKeyPaths] = {}
    for bank in config.banks.values():
        t = bank.transport
        sm2 = bank.signature == "sm2"
        if getattr(t, "kind", "") == "https":
            gw_tls_cert, gw_tls_key = claim(at(t.client_cert), "gateway TLS cert"), claim(at(t.client_key), "gateway TLS key")
        if getattr(t, "kind", "") == "sftp":
            gw_ssh = claim(at(t.client_key), "gateway SSH key")
        d = root / bank.id
        if sm2:
            gw_sm2_key = claim(at(bank.keys.signing_key), "gateway SM2 key")
            gw_sm2_pub = claim(at(bank.keys.signing_cert), "gateway SM2 public key")
            sign_key, sign_cert = claim(d / "sm2.key", f"{bank.id} SM2 key"), claim(at(bank.keys.bank_cert), f"{bank.id} SM2 public key")
        else:
            gw_sign_key = claim(at(bank.keys.signing_key), "gateway signing key")
            gw_sign_cert = claim(at(bank.keys.signing_cert), "gateway signing cert")
            sign_cert = claim(at(bank.keys.bank_cert), f"{bank.id} signing cert")
            sign_key = claim(sign_cert.with_suffix(".key"), f"{bank.id} signing key")
        tls_cert = at(t.server_cert) if getattr(t, "kind", "") == "https" else d / "tls.crt"
        host_pub = at(t.host_key) if getattr(t, "kind", "") == "sftp" else d / "ssh_host_key.pub"
        host_key = host_pub.with_suffix("") if host_pub.suffix == ".pub" else host_pub.with_name(host_pub.name + ".key")
        banks[bank.id] = BankKeyPaths(
            bank_id=bank.id, sign_key=sign_key, sign_cert=sign_cert,
            tls_cert=claim(tls_cert, f"{bank.id} TLS cert"), tls_key=claim(tls_cert.with_suffix(".key"), f"{bank.id} TLS key"),
            ssh_host_key=claim(host_key, f"{bank.id} host key"), ssh_host_pub=claim(host_pub, f"{bank.id} host key pub"),
            sftp_password=d / "sftp_password",
            gateway_sign_cert=gw_sm2_pub if sm2 else gw_sign_cert, tls_client_ca=root / "ca/tls-ca.crt",
            gateway_ssh_pub=Path(str(gw_ssh) + ".pub"),
        )

    _leaf(sign_ca, gw_sign_key, gw_sign_cert, "yikatong gateway signing")
    _leaf(tls_ca, gw_tls_key, gw_tls_cert, "yikatong gateway", client=True)
    _ssh_key(gw_ssh, Path(str(gw_ssh) + ".pub"), "yikatong-gateway")
    if any(b.signature == "sm2" for b in config.banks.values()):
        _sm2(gw_sm2_key, gw_sm2_pub)
    for bank in config.banks.values():
        p = banks[bank.id]
        if bank.signature == "sm2":
            _sm2(p.sign_key, p.sign_cert)
        else:
            _leaf(sign_ca, p.sign_key, p.sign_cert, f"{bank.name} signing ({bank.id})")
        _leaf(tls_ca, p.tls_key, p.tls_cert, f"{bank.id} simulated bank", server=True)
        _ssh_key(p.ssh_host_key, p.ssh_host_pub, f"{bank.id}-host")
        if not p.sftp_password.exists():
            _write(p.sftp_password, secrets.token_urlsafe(18).encode() + b"\n", private=True)
    return KeyPaths(
        keys_dir=root, tls_ca_cert=root / "ca/tls-ca.crt", tls_ca_key=root / "ca/tls-ca.key",
        sign_ca_cert=root / "ca/sign-ca.crt", gateway_sign_key=gw_sign_key, gateway_sign_cert=gw_sign_cert,
        gateway_tls_cert=gw_tls_cert, gateway_tls_key=gw_tls_key, gateway_ssh_key=gw_ssh,
        gateway_ssh_pub=Path(str(gw_ssh) + ".pub"), gateway_sm2_key=gw_sm2_key, gateway_sm2_pub=gw_sm2_pub,
        banks=banks,
    )
