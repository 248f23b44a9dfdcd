"""The rule engine's within-batch memory (:class:`PackedMap`): exact, and about the size of what it holds.

The within-batch rules [Art. 18: one person once per policy and period, one account for a plausible
number of people, a plausible number of payees per household] remember every person of the roster;
a wrong answer here is a person wrongly rejected as a duplicate, or a duplicate paid twice."""

import hashlib
import random
import tracemalloc

import pytest

from gateway.validation.packed import PackedMap


def _keys(n: int, seed: int = 1) -> list[bytes]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).digest()[:16] for i in range(n)]


def test_it_answers_exactly_as_a_dict_does():
    rnd = random.Random(7)
    keys = _keys(50_000)
    m, d = PackedMap(16, 4), {}
    for i, k in enumerate(keys):
        v = rnd.randrange(1 << 32).to_bytes(4, "big")
        if i and rnd.random() < 0.3:  # overwrite an earlier key now and then
            k = keys[rnd.randrange(i)]
        if rnd.random() < 0.5:
            m.put(k, v)
            d[k] = v
        else:  # kept if already there, as dict.setdefault does
            assert m.setdefault(k, v) == (d[k] if k in d else None)
            d.setdefault(k, v)
    assert len(m) == len(d)
    assert all(m.get(k) == v for k, v in d.items())
    assert all(m.get(k) is None for k in _keys(5_000, seed=2))  # never put


def test_a_match_straddling_two_entries_is_not_a_key():
    # two keys in one bucket (same first two bytes); the 16 bytes from offset 4 of the first entry's key
    # through its value begin with the bucket's two bytes too, so ``find`` meets them first
    k1 = b"\x00\x01\xaa\xbb\x00\x01" + bytes(range(10))
    v1 = b"\x10\x11\x12\x13"
    ghost = (k1 + v1)[4:20]
    assert ghost[:2] == b"\x00\x01" and len(ghost) == 16
    m = PackedMap(16, 4)
    m.put(k1, v1)
    assert m.get(ghost) is None and ghost not in m
    m.put(ghost, b"\x00\x00\x00\x07")  # a real entry after it
    assert m.get(ghost) == b"\x00\x00\x00\x07" and m.get(k1) == v1 and len(m) == 2
    m.put(ghost, b"\x00\x00\x00\x08")  # replaced in place, the first entry untouched
    assert m.get(ghost) == b"\x00\x00\x00\x08" and m.get(k1) == v1 and len(m) == 2


def test_as_a_set():
    s = PackedMap(32)
    a, b = _keys(2)
    assert s.add(a + b) is True
    assert s.add(a + b) is False
    assert s.add(b + a) is True
    assert (a + b) in s and (a + a) not in s and len(s) == 2


def test_wrong_sizes_are_refused():
    m = PackedMap(16, 4)
    with pytest.raises(ValueError, match="expected 16"):
        m.put(b"short", b"\x00" * 4)
    with pytest.raises(ValueError, match="expected 16"):
        m.get(b"short")
    with pytest.raises(ValueError, match="expected 4"):
        m.put(bytes(16), b"\x00")
    with pytest.raises(ValueError):
        PackedMap(1)


def test_half_a_million_people_take_about_their_own_bytes():
    """What made the packing worth it: 20 bytes of key and row number per person cost ~100 bytes in a dict."""
    keys = _keys(500_000)
    row = (12345).to_bytes(4, "big")
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        m = PackedMap(16, 4)
        for k in keys:
            m.put(k, row)
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(m) == 500_000
    assert used / 500_000 < 32, f"{used / 500_000:.1f} bytes per person"
