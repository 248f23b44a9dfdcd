"""The memory of roster reading and the rule engine (:class:`PackedMap`): exact, and about the size
of what it holds.

Reading a roster refuses an ID number that appears twice; the within-batch rules [Art. 18: one person
once per policy and period, one account for a plausible number of people, a plausible number of
payees per household] remember every person of the roster. A wrong answer here is a person wrongly
rejected as a duplicate, or a duplicate paid twice."""

import hashlib
import random
import tracemalloc

import pytest

from gateway.packed import PackedMap


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
    # one bucket of 2-byte keys with 1-byte values: across each entry boundary, the bytes of one
    # entry's value and the next entry's key read as another key, which ``find`` meets first
    m = PackedMap(2, 1, buckets=1)
    rnd = random.Random(3)
    entries = {rnd.randbytes(2): rnd.randbytes(1) for _ in range(3000)}
    for k, v in entries.items():
        m.put(k, v)
    ghosts = {k[1:] + v for k, v in entries.items()} - set(entries)
    assert ghosts  # the map's buckets hold these byte pairs across entry boundaries
    assert all(m.get(g) is None for g in ghosts)
    assert all(m.get(k) == v for k, v in entries.items()) and len(m) == len(entries)
    g = next(iter(ghosts))
    m.put(g, b"\x07")  # becomes a real entry; the others are untouched
    m.put(g, b"\x08")  # replaced in place
    assert m.get(g) == b"\x08" and len(m) == len(entries) + 1
    assert all(m.get(k) == v for k, v in entries.items())


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
        PackedMap(0)
    with pytest.raises(ValueError, match="power of two"):
        PackedMap(16, buckets=1000)


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
