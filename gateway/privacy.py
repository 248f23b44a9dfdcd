"""Personal data at rest and on screen [Art. 30-35].

* ``PiiVault.encrypt`` / ``decrypt``: AES-256-GCM; the ciphertext names its key id, so keys can
  be rotated (old ciphertexts stay readable while any old key is kept).
* ``PiiVault.blind_index``: HMAC-SHA256 keyed hash for lookups and duplicate checks; the kind
  (``"id"``, ``"account"``, ``"name"``) separates domains so equal strings of different kinds
  never collide.
* ``mask_id`` / ``mask_name`` / ``mask_account``: what anyone without the right to see the full
  value is shown.

>>> mask_id("500236199001011234"), mask_name("欧阳小明"), mask_account("6217000123456789012")
('500236********1234', '欧**明', '***************9012')
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import YktError

_VERSION = b"\x01"
KEY_ENV = "YKT_PII_KEY"


class PiiKeyError(YktError):
    """The personal-data key is missing or unusable."""


def _normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "id":
        return value.upper()
    if kind == "account":
        return "".join(value.split())
    return value


class PiiVault:
    """Encrypts and indexes personal data with one current key and any number of old ones.

    ``keys`` maps a key id (up to 8 ASCII characters) to 32 raw bytes; ``current`` names the one
    used for new ciphertexts. The blind-index key is derived from the *first ever* key
    (``index_key``) so that lookups keep working across rotations.
    """

    def __init__(self, keys: dict[str, bytes], current: str, index_key: bytes) -> None:
        if current not in keys:
            raise PiiKeyError(f"current key id {current!r} not among the keys")
        for kid, k in keys.items():
            if len(k) != 32 or not (0 < len(kid.encode()) <= 8):
                raise PiiKeyError(f"key {kid!r} must be 32 bytes with an id of 1-8 characters")
        self._keys = dict(keys)
        self._current = current
        self._index_key = hashlib.sha256(b"ykt-blind-index" + index_key).digest()

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str) -> "PiiVault":
        """Lines ``<id> <base64 key>``; the last line is current, the first keys the blind index."""
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                kid, b64 = line.split()
                pairs.append((kid, base64.b64decode(b64, validate=True)))
            except ValueError:
                raise PiiKeyError(f"personal-data key file line {n} is not '<id> <base64 key>'") from None
        if not pairs:
            raise PiiKeyError("personal-data key file holds no key")
        return cls(dict(pairs), pairs[-1][0], pairs[0][1])

    @classmethod
    def load(cls, path: Path | str | None = None) -> "PiiVault":
        """From ``$YKT_PII_KEY`` (the file's text) or the key file; never invents a key."""
        env = os.environ.get(KEY_ENV)
        if env:
            return cls.from_text(env)
        path = Path(path or "var/keys/pii.keys")
        if not path.exists():
            raise PiiKeyError(f"no personal-data key: set {KEY_ENV} or create {path} with `ykt keys init`",)
        return cls.from_text(path.read_text(encoding="ascii"))

    @staticmethod
    def new_key_line(key_id: str | None = None) -> str:
        return f"{key_id or secrets.token_hex(3)} {base64.b64encode(secrets.token_bytes(32)).decode()}"

    # --- use -----------------------------------------------------------------------------------
    @property
    def current_key_id(self) -> str:
        return self._current

    def encrypt(self, plaintext: str) -> bytes:
        kid = self._current.encode().ljust(8, b"\0")
        nonce = secrets.token_bytes(12)
        ct = AESGCM(self._keys[self._current]).encrypt(nonce, plaintext.encode("utf-8"), _VERSION + kid)
        return _VERSION + kid + nonce + ct

    def decrypt(self, blob: bytes) -> str:
        if len(blob) < 1 + 8 + 12 + 16 or blob[:1] != _VERSION:
            raise PiiKeyError("not a personal-data ciphertext of a known version")
        kid = blob[1:9].rstrip(b"\0").decode()
        key = self._keys.get(kid)
        if key is None:
            raise PiiKeyError(f"ciphertext made with key {kid!r}, which is not loaded")
        try:
            return AESGCM(key).decrypt(blob[9:21], blob[21:], blob[:9]).decode("utf-8")
        except Exception:
            raise PiiKeyError("personal-data ciphertext failed authentication (altered or wrong key)") from None

    def key_id_of(self, blob: bytes) -> str:
        return blob[1:9].rstrip(b"\0").decode()

    def blind_index(self, kind: str, value: str) -> str:
        msg = kind.encode() + b"\0" + _normalise(kind, value).encode("utf-8")
        return hmac.new(self._index_key, msg, hashlib.sha256).hexdigest()


def mask_id(value: str, head: int = 6, tail: int = 4) -> str:
    """ID first ``head`` and last ``tail`` characters kept; shorter values are fully masked."""
    v = value.strip()
    if len(v) <= head + tail:
        return "*" * len(v)
    return v[:head] + "*" * (len(v) - head - tail) + v[-tail:]


def mask_name(value: str) -> str:
    """The middle characters masked: 张 -> *, 张三 -> 张*, 张小三 -> 张*三, 欧阳小明 -> 欧**明."""
    v = value.strip()
    if len(v) <= 1:
        return "*" * len(v)
    if len(v) == 2:
        return v[0] + "*"
    return v[0] + "*" * (len(v) - 2) + v[-1]


def mask_account(value: str, tail: int = 4) -> str:
    v = "".join(value.split())
    if len(v) <= tail:
        return "*" * len(v)
    return "*" * (len(v) - tail) + v[-tail:]
