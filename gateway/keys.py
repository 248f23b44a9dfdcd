"""Loading the keys a bank's configuration names: our signing key and certificate, and the bank's
pinned certificate (or, for SM2, the pinned public key in hex)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.config.model import Bank
from gateway.errors import YktError


class KeyMaterialError(YktError):
    """A key or certificate named in the configuration is missing or unreadable."""


@dataclass(frozen=True)
class SigningMaterial:
    scheme: str  # cms | xmldsig | sm2
    key: bytes  # PEM (cms, xmldsig) or ASCII hex (sm2)
    cert: bytes  # our certificate (PEM) or public key hex (sm2)
    bank_pin: bytes  # the bank's certificate (PEM) or public key hex (sm2), pinned

    @property
    def detached_ext(self) -> str | None:
        return {"cms": "p7s", "sm2": "sm2"}.get(self.scheme)


def _read(path: Path, what: str, bank: Bank) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyMaterialError(f"bank {bank.id}: cannot read {what} {path}: {e.strerror} (run `ykt keys init`?)",
                               zh=f"代发银行 {bank.id} 的密钥文件缺失或无法读取：{path}") from None
    return data.strip() if bank.signature == "sm2" else data


def load_signing(bank: Bank) -> SigningMaterial:
    return SigningMaterial(bank.signature, _read(bank.keys.signing_key, "signing key", bank),
                           _read(bank.keys.signing_cert, "signing certificate", bank),
                           _read(bank.keys.bank_cert, "bank certificate", bank))


def load_bank_pin(bank: Bank) -> bytes:
    """Only the bank's pinned certificate (or SM2 public key): all that verifying its files needs."""
    return _read(bank.keys.bank_cert, "bank certificate", bank)
