"""The simulated bank's account book: who holds which account, and in what state.

Crediting and online verification check against it::

    unknown account            AC01   (unless the book accepts unknown accounts: benchmarks, demos)
    closed                     AC04
    frozen or lost             AC06
    name or ID number differs  BE01

Loaded from CSV (``account,name,id_number,status``; UTF-8) or TOML (``[[account]]`` tables with the
same keys), or generated from a seed.

>>> book = AccountBook([Holder("6217000000000001", "张三", "500236199001011234", "frozen"),
...                     Holder("6217000000000002", "李四", "500236199001021236")])
>>> book.check("6217000000000001", "张三", "500236199001011234")
'AC06'
>>> book.check("6217000000000009", "张三", None), book.check("6217000000000002", "李 四", None)
('AC01', 'BE01')
"""

from __future__ import annotations

import csv
import io
import random
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

STATUSES = ("active", "frozen", "closed", "lost")
_STATUS_REASON = {"closed": "AC04", "frozen": "AC06", "lost": "AC06"}


class BookError(ValueError):
    """An account book file is unusable: names the file, row and field."""


@dataclass(frozen=True)
class Holder:
    account: str
    name: str
    id_number: str | None = None
    status: str = "active"


def _norm(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "").strip().upper()


class AccountBook:
    """Holders by account number. ``unknown="reject"`` answers AC01 for an account not in the book,
    ``unknown="accept"`` treats it as an active account of whoever is named (benchmark mode)."""

    def __init__(self, holders: Iterable[Holder] = (), *, unknown: str = "reject") -> None:
        if unknown not in ("reject", "accept"):
            raise BookError(f"unknown must be 'reject' or 'accept', not {unknown!r}")
        self.unknown = unknown
        self.holders: dict[str, Holder] = {}
        for h in holders:
            if h.status not in STATUSES:
                raise BookError(f"account {h.account}: status {h.status!r} is not one of {', '.join(STATUSES)}")
            self.holders[h.account] = h

    def __len__(self) -> int:
        return len(self.holders)

    def check(self, account: str, name: str | None, id_number: str | None) -> str | None:
        """``None`` if a payment to ``account`` for ``name`` / ``id_number`` can be credited, else the reason code.
        An ID number is compared only when both sides have one."""
        h = self.holders.get(account)
        if h is None:
            return None if self.unknown == "accept" else "AC01"
        if h.status in _STATUS_REASON:
            return _STATUS_REASON[h.status]
        if name is not None and _norm(name) != _norm(h.name):
            return "BE01"
        if id_number and h.id_number and _norm(id_number) != _norm(h.id_number):
            return "BE01"
        return None

    # ------------------------------------------------------------------ loading and generating

    @classmethod
    def from_file(cls, path: Path | str, *, unknown: str = "reject") -> "AccountBook":
        """Read a ``.csv`` or ``.toml`` book. :raises BookError: naming file, row and field."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BookError(f"{path}: cannot be read: {e.strerror}") from None
        rows: list[dict] = []
        if path.suffix == ".toml":
            try:
                rows = list(tomllib.loads(data.decode("utf-8")).get("account", []))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise BookError(f"{path}: not valid UTF-8 TOML: {e}") from None
        elif path.suffix == ".csv":
            try:
                rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
            except UnicodeDecodeError as e:
                raise BookError(f"{path}: not UTF-8: {e}") from None
        else:
            raise BookError(f"{path}: an account book is a .csv or .toml file")
        holders = []
        for i, row in enumerate(rows, 2 if path.suffix == ".csv" else 1):
            where = f"{path}:{i}" if path.suffix == ".csv" else f"{path}: account[{i - 1}]"
            account, name = (row.get("account") or "").strip(), (row.get("name") or "").strip()
            status = (row.get("status") or "active").strip()
            if not account or not name:
                raise BookError(f"{where}: account and name are required")
            if status not in STATUSES:
                raise BookError(f"{where}: status={status!r} is not one of {', '.join(STATUSES)}")
            holders.append(Holder(account, name, (row.get("id_number") or "").strip() or None, status))
        return cls(holders, unknown=unknown)

    @classmethod
    def generate(cls, seed: int, n: int, *, unknown: str = "reject") -> "AccountBook":
        """``n`` holders made from ``seed`` (same seed, same book); about 2% frozen, 1% closed, 1% lost."""
        return cls(generate_holders(seed, n), unknown=unknown)

    def to_csv(self) -> bytes:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["account", "name", "id_number", "status"])
        for h in self.holders.values():
            w.writerow([h.account, h.name, h.id_number or "", h.status])
        return out.getvalue().encode("utf-8")


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗谭冉秦向"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华平刚桂兰玉梅"


def _id_number(rng: random.Random) -> str:
    body = f"500236{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]
    return body + check


def generate_holders(seed: int, n: int) -> list[Holder]:
    """Deterministic holders: valid GB 11643 ID numbers, 16-19 digit accounts, statuses mostly active."""
    rng = random.Random(f"book:{seed}")
    out = []
    for i in range(n):
        name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
        r = rng.random()
        status = "frozen" if r < 0.02 else "closed" if r < 0.03 else "lost" if r < 0.04 else "active"
        out.append(Holder(f"6217{seed % 10000:04d}{i:011d}", name, _id_number(rng), status))
    return out
