"""``PackedMap``: an exact map from fixed-size byte keys to fixed-size byte values, about as many
bytes per entry as the key and value themselves.

Reading a roster remembers every ID number it has seen; the rule engine remembers, within one batch,
every person, every account and who is paid into it, every household and its payees. In plain dicts
of integers that cost about 100 bytes per entry (the dict slot, the key object, the value object):
100-200 MB for a roster of a million people. Here each entry is its key and value bytes, packed one
after another into one of 65,536 ``bytes`` buckets chosen by the key's hash: a million 20-byte
entries take about 24 MB. A look-up finds the key in its bucket with ``bytes.find`` (a few hundred
bytes at a million entries) and accepts only a match that starts on an entry boundary, so no key is
ever mistaken for another.
"""

from __future__ import annotations

BUCKETS = 1 << 16


class PackedMap:
    """Keys of exactly ``key_size`` bytes to values of exactly ``value_size`` bytes (0 makes it a
    set). Exact: no false hits, nothing evicted."""

    __slots__ = ("_buckets", "_mask", "_key_size", "_entry", "_len")

    def __init__(self, key_size: int, value_size: int = 0, *, buckets: int = BUCKETS):
        if key_size < 1 or value_size < 0:
            raise ValueError("key_size must be at least 1 byte and value_size at least 0")
        if buckets < 1 or buckets & (buckets - 1):
            raise ValueError("buckets must be a power of two")
        self._key_size, self._entry = key_size, key_size + value_size
        self._buckets: list[bytes] = [b""] * buckets
        self._mask = buckets - 1
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def _at(self, bucket: bytes, key: bytes) -> int:
        """Offset of the entry for ``key`` in ``bucket``, or -1."""
        if len(key) != self._key_size:
            raise ValueError(f"key of {len(key)} bytes, expected {self._key_size}")
        i = bucket.find(key)
        entry = self._entry
        while i > 0 and i % entry:  # a match straddling two entries is not the key
            i = bucket.find(key, i + 1)
        return i

    def get(self, key: bytes) -> bytes | None:
        """The value stored for ``key`` (``b""`` in a set), or None if it was never put."""
        bucket = self._buckets[hash(key) & self._mask]
        i = self._at(bucket, key)
        return None if i < 0 else bucket[i + self._key_size:i + self._entry]

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def setdefault(self, key: bytes, value: bytes) -> bytes | None:
        """The value already stored for ``key``; if there is none, store ``value`` and return None.
        (Unlike ``dict.setdefault``, None tells the caller the key is new.)"""
        b = hash(key) & self._mask
        bucket = self._buckets[b]
        i = self._at(bucket, key)
        if i >= 0:
            return bucket[i + self._key_size:i + self._entry]
        if len(value) != self._entry - self._key_size:
            raise ValueError(f"value of {len(value)} bytes, expected {self._entry - self._key_size}")
        self._buckets[b] = bucket + key + value
        self._len += 1
        return None

    def put(self, key: bytes, value: bytes = b"") -> None:
        """Store ``value`` for ``key``, replacing any earlier value."""
        if len(value) != self._entry - self._key_size:
            raise ValueError(f"value of {len(value)} bytes, expected {self._entry - self._key_size}")
        b = hash(key) & self._mask
        bucket = self._buckets[b]
        i = self._at(bucket, key)
        if i < 0:
            self._buckets[b] = bucket + key + value
            self._len += 1
        else:
            self._buckets[b] = bucket[:i + self._key_size] + value + bucket[i + self._entry:]

    def add(self, key: bytes) -> bool:
        """Put ``key`` with an all-zero value unless present (a set's add); True if it was new."""
        return self.setdefault(key, bytes(self._entry - self._key_size)) is None
