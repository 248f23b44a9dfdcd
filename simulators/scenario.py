"""Scenarios: how a simulated bank behaves, as data (``config/scenarios/*.toml``).

A scenario holds item rules (first match wins, before the account book is consulted), file rules,
report settings, the reason codes for refusing a whole file and outage windows. Chance is decided
by hashing ``seed``, the rule and the item, so an item's fate does not depend on the order of
processing or on memory, and the same scenario and seed always give the same outcomes.

>>> s = Scenario.from_mapping({"rule": [{"account": "6217000000000009", "outcome": "reject", "reason": "AC04"}]},
...                           source="inline")
>>> d = s.decide_item(ItemFacts("M1", "f.xml", 1, "E1", "6217000000000009", "张三", None, Decimal("10.00")), seed=0)
>>> d.status, d.reason
('RJCT', 'AC04')
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping, NamedTuple

DEFAULT_SCENARIO_DIR = Path(__file__).resolve().parent.parent / "config" / "scenarios"
ITEM_OUTCOMES = ("settle", "reject", "return")
_CODE = re.compile(r"[A-Z0-9]{4}")


class ScenarioError(ValueError):
    """A scenario file is not usable; lists every problem with its key path."""

    def __init__(self, problems: list[str], *, source: str) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems
        self.source = source


class ItemFacts(NamedTuple):
    """What a rule can look at for one payment (a NamedTuple: made once per payment, so cheap)."""

    msg_id: str
    file: str
    sequence: int
    end_to_end_id: str
    account: str
    name: str
    id_number: str | None
    amount: Decimal


@dataclass(frozen=True)
class Decision:
    """What happens to one payment: ``status`` ACSC (credited) or RJCT (with ``reason``); a credited
    payment may come back ``return_days`` working days later with ``return_reason``; ``late_days``
    delays its status line by that many working days."""

    status: str
    reason: str | None = None
    return_days: int = 0
    return_reason: str | None = None
    late_days: int = 0
    rule: str | None = None


@dataclass(frozen=True)
class Match:
    """Conditions, all of which must hold. Text conditions accept one value or a list."""

    account: tuple[str, ...] = ()
    name: tuple[str, ...] = ()
    id_number: tuple[str, ...] = ()
    end_to_end_id: str | None = None  # glob
    file: str | None = None  # glob on the file name
    sequence: tuple[int, ...] = ()
    amount: Decimal | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    chance: float | None = None
    limit: int | None = None  # fires at most this many times per bank run


@dataclass(frozen=True)
class ItemRule:
    label: str
    match: Match
    outcome: str
    reason: str | None = None
    days: int = 0
    late_days: int = 0


@dataclass(frozen=True)
class FileRule:
    label: str
    match: Match
    refuse: str | None = None  # a reason code: refuse the whole file
    late_days: int = 0
    duplicate: bool = False
    split_items: int = 0


@dataclass(frozen=True)
class Outage:
    """A window (bank local time) in which ``transport`` is down: SFTP refuses connections, HTTPS answers 503.
    Either absolute (``start``/``end``) or every day (``daily_start``/``daily_end``)."""

    transport: str  # "sftp", "https" or "all"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    daily_start: dt.time | None = None
    daily_end: dt.time | None = None

    def covers(self, kind: str, when: dt.datetime) -> bool:
        if self.transport not in ("all", kind):
            return False
        if self.start is not None:
            return self.start <= when < self.end
        t = when.time()
        return self.daily_start <= t < self.daily_end

    def boundaries_after(self, when: dt.datetime) -> dt.datetime | None:
        """The next moment after ``when`` at which this window opens or closes."""
        if self.start is not None:
            later = [b for b in (self.start, self.end) if b > when]
            return min(later) if later else None
        out = []
        for day in (when.date(), when.date() + dt.timedelta(days=1)):
            for t in (self.daily_start, self.daily_end):
                b = dt.datetime.combine(day, t)
                if b > when:
                    out.append(b)
        return min(out)


@dataclass(frozen=True)
class ReportSettings:
    pain002_version: str = "pain.002.001.12"
    split_items: int = 0
    duplicate: bool = False
    duplicate_after_seconds: int = 3600
    release_time: dt.time = dt.time(9, 0)  # when reports due on a later working day appear
    return_reason: str = "AC04"


@dataclass(frozen=True)
class Refusals:
    signature: str = "FF01"
    replay: str = "DU01"
    control_sum: str = "AM09"
    unreadable: str = "FF01"


@dataclass(frozen=True)
class BookSettings:
    file: Path | None = None
    generate: int = 0
    unknown: str = "reject"


@dataclass
class Scenario:
    source: str = "<default>"
    description: str = ""
    seed: int = 0
    book: BookSettings = field(default_factory=BookSettings)
    reports: ReportSettings = field(default_factory=ReportSettings)
    refusals: Refusals = field(default_factory=Refusals)
    rules: tuple[ItemRule, ...] = ()
    file_rules: tuple[FileRule, ...] = ()
    outages: tuple[Outage, ...] = ()
    fired: dict[str, int] = field(default_factory=dict)  # rule label -> times fired (for ``limit``)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: Path | str | None) -> "Scenario":
        """Read a scenario TOML; a bare name (``"demo"``) is looked up in ``config/scenarios/``;
        ``None`` is the built-in default (settle everything the book allows)."""
        if path is None:
            return cls()
        p = Path(path)
        if not p.exists() and not p.suffix:
            p = DEFAULT_SCENARIO_DIR / f"{p}.toml"
        try:
            data = tomllib.loads(p.read_text("utf-8"))
        except OSError as e:
            raise ScenarioError([f"cannot be read: {e.strerror}"], source=str(p)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ScenarioError([f"not valid UTF-8 TOML: {e}"], source=str(p)) from None
        return cls.from_mapping(data, source=str(p), base=p.parent)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str, base: Path | None = None) -> "Scenario":
        problems: list[str] = []
        _keys(data, {"description", "seed", "book", "reports", "refusals", "rule", "file_rule", "outage"}, "", problems)
        book_d = data.get("book", {})
        _keys(book_d, {"file", "generate", "unknown"}, "book", problems)
        book_file = book_d.get("file")
        book = BookSettings(
            file=(base or Path(".")) / book_file if book_file else None,
            generate=_int(book_d, "generate", "book", problems, 0),
            unknown=_choice(book_d, "unknown", "book", problems, ("reject", "accept"), "reject"),
        )
        rep_d = data.get("reports", {})
        _keys(rep_d, {"pain002_version", "split_items", "duplicate", "duplicate_after_seconds", "release_time",
                      "return_reason"}, "reports", problems)
        reports = ReportSettings(
            pain002_version=_choice(rep_d, "pain002_version", "reports", problems,
                                    ("pain.002.001.03", "pain.002.001.10", "pain.002.001.12", "pain.002.001.14"),
                                    "pain.002.001.12"),
            split_items=_int(rep_d, "split_items", "reports", problems, 0),
            duplicate=bool(rep_d.get("duplicate", False)),
            duplicate_after_seconds=_int(rep_d, "duplicate_after_seconds", "reports", problems, 3600),
            release_time=rep_d.get("release_time", dt.time(9, 0)),
            return_reason=_code(rep_d, "return_reason", "reports", problems) or "AC04",
        )
        ref_d = data.get("refusals", {})
        _keys(ref_d, {"signature", "replay", "control_sum", "unreadable"}, "refusals", problems)
        refusals = Refusals(**{k: _code(ref_d, k, "refusals", problems) or getattr(Refusals, k)
                               for k in ("signature", "replay", "control_sum", "unreadable")})
        rules = []
        for i, r in enumerate(data.get("rule", [])):
            path = f"rule[{i}]"
            _keys(r, _MATCH_KEYS | {"label", "outcome", "reason", "days", "late_days"}, path, problems)
            outcome = _choice(r, "outcome", path, problems, ITEM_OUTCOMES, "settle")
            reason = _code(r, "reason", path, problems)
            if outcome == "reject" and not reason:
                problems.append(f"{path}.reason: a rejection needs a reason code (e.g. AC04)")
            days = _int(r, "days", path, problems, 2 if outcome == "return" else 0)
            rules.append(ItemRule(str(r.get("label", path)), _match(r, path, problems), outcome, reason, days,
                                 _int(r, "late_days", path, problems, 0)))
        file_rules = []
        for i, r in enumerate(data.get("file_rule", [])):
            path = f"file_rule[{i}]"
            _keys(r, _MATCH_KEYS | {"label", "refuse", "late_days", "duplicate", "split_items"}, path, problems)
            file_rules.append(FileRule(str(r.get("label", path)), _match(r, path, problems), _code(r, "refuse", path, problems),
                                       _int(r, "late_days", path, problems, 0), bool(r.get("duplicate", False)),
                                       _int(r, "split_items", path, problems, 0)))
        outages = []
        for i, o in enumerate(data.get("outage", [])):
            path = f"outage[{i}]"
            _keys(o, {"transport", "from", "to", "daily_from", "daily_to"}, path, problems)
            kind = _choice(o, "transport", path, problems, ("sftp", "https", "all"), "all")
            if "from" in o or "to" in o:
                a, b = o.get("from"), o.get("to")
                if not (isinstance(a, dt.datetime) and isinstance(b, dt.datetime) and a < b and a.tzinfo is None):
                    problems.append(f"{path}: from/to must be local date-times (no offset) with from < to")
                    continue
                outages.append(Outage(kind, start=a, end=b))
            else:
                a, b = o.get("daily_from"), o.get("daily_to")
                if not (isinstance(a, dt.time) and isinstance(b, dt.time) and a < b):
                    problems.append(f"{path}: needs from/to date-times or daily_from/daily_to times (from < to)")
                    continue
                outages.append(Outage(kind, daily_start=a, daily_end=b))
        if problems:
            raise ScenarioError(problems, source=source)
        return cls(source=source, description=str(data.get("description", "")), seed=_int(data, "seed", "", problems, 0),
                   book=book, reports=reports, refusals=refusals, rules=tuple(rules), file_rules=tuple(file_rules),
                   outages=tuple(outages))

    # ------------------------------------------------------------------ deciding

    def _fires(self, label: str, m: Match, seed: int, key: str) -> bool:
        if m.chance is not None and _fraction(seed, label, key) >= m.chance:
            return False
        if m.limit is not None:
            if self.fired.get(label, 0) >= m.limit:
                return False
        self.fired[label] = self.fired.get(label, 0) + 1
        return True

    def decide_item(self, item: ItemFacts, *, seed: int, book=None) -> Decision:
        """The first item rule that matches and fires decides; otherwise the account book
        (``book.check``); otherwise the payment is credited."""
        for r in self.rules:
            if _matches(r.match, item) and self._fires(r.label, r.match, seed, f"{item.msg_id}/{item.end_to_end_id}"):
                if r.outcome == "reject":
                    return Decision("RJCT", r.reason, late_days=r.late_days, rule=r.label)
                if r.outcome == "return":
                    return Decision("ACSC", return_days=r.days, return_reason=r.reason or self.reports.return_reason,
                                    late_days=r.late_days, rule=r.label)
                return Decision("ACSC", late_days=r.late_days, rule=r.label)
        if book is not None:
            reason = book.check(item.account, item.name, item.id_number)
            if reason:
                return _BOOK_REJECTIONS.get(reason) or Decision("RJCT", reason)
        return _CREDITED

    def decide_file(self, name: str, msg_id: str, *, seed: int) -> FileRule:
        """The combined file rules that fire for this file (refusal, lateness, duplication, splitting)."""
        out = FileRule("", Match(), None, 0, self.reports.duplicate, self.reports.split_items)
        for r in self.file_rules:
            if r.match.file is not None and not fnmatch.fnmatchcase(name, r.match.file):
                continue
            if self._fires(r.label, r.match, seed, msg_id):
                out = FileRule(r.label, r.match, r.refuse or out.refuse, r.late_days or out.late_days,
                               r.duplicate or out.duplicate, r.split_items or out.split_items)
        return out

    def outage(self, kind: str, when: dt.datetime) -> bool:
        return any(o.covers(kind, when) for o in self.outages)


#: the decisions most payments get (immutable, so one instance serves them all)
_CREDITED = Decision("ACSC")
_BOOK_REJECTIONS = {code: Decision("RJCT", code) for code in ("AC01", "AC04", "AC06", "BE01", "MD07")}

_MATCH_KEYS = {"account", "name", "id_number", "end_to_end_id", "file", "sequence", "amount", "amount_min",
               "amount_max", "chance", "limit"}


def _fraction(seed: int, label: str, key: str) -> float:
    digest = hashlib.sha256(f"{seed}|{label}|{key}".encode()).digest()
    return int.from_bytes(digest[:7], "big") / float(1 << 56)


def _matches(m: Match, item: ItemFacts) -> bool:
    if m.account and item.account not in m.account:
        return False
    if m.name and item.name not in m.name:
        return False
    if m.id_number and (item.id_number or "") not in m.id_number:
        return False
    if m.end_to_end_id is not None and not fnmatch.fnmatchcase(item.end_to_end_id, m.end_to_end_id):
        return False
    if m.file is not None and not fnmatch.fnmatchcase(item.file, m.file):
        return False
    if m.sequence and item.sequence not in m.sequence:
        return False
    if m.amount is not None and item.amount != m.amount:
        return False
    if m.amount_min is not None and item.amount < m.amount_min:
        return False
    if m.amount_max is not None and item.amount > m.amount_max:
        return False
    return True


def _keys(d: Any, allowed: set[str], path: str, problems: list[str]) -> None:
    if not isinstance(d, Mapping):
        problems.append(f"{path or '(top)'}: expected a table")
        return
    for k in d:
        if k not in allowed:
            problems.append(f"{path + '.' if path else ''}{k}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _int(d: Mapping, key: str, path: str, problems: list[str], default: int) -> int:
    v = d.get(key, default) if isinstance(d, Mapping) else default
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        problems.append(f"{path + '.' if path else ''}{key}: must be a whole number >= 0, got {v!r}")
        return default
    return v


def _choice(d: Mapping, key: str, path: str, problems: list[str], choices, default):
    v = d.get(key, default) if isinstance(d, Mapping) else default
    if v not in choices:
        problems.append(f"{path}.{key}: {v!r} is not one of {', '.join(choices)}")
        return default
    return v


def _code(d: Mapping, key: str, path: str, problems: list[str]) -> str | None:
    v = d.get(key) if isinstance(d, Mapping) else None
    if v is not None and not (isinstance(v, str) and _CODE.fullmatch(v)):
        problems.append(f"{path}.{key}: a reason code is four capital letters or digits, got {v!r}")
        return None
    return v


def _texts(v: Any, path: str, problems: list[str]) -> tuple[str, ...]:
    if v is None:
        return ()
    vals = v if isinstance(v, list) else [v]
    if not all(isinstance(x, str) for x in vals):
        problems.append(f"{path}: expected text or a list of texts")
        return ()
    return tuple(vals)


def _amount(v: Any, path: str, problems: list[str]) -> Decimal | None:
    if v is None:
        return None
    try:
        if isinstance(v, float) or not isinstance(v, (str, int)):
            raise InvalidOperation
        return Decimal(str(v)).quantize(Decimal("0.01"))
    except InvalidOperation:
        problems.append(f"{path}: an amount is text like \"300.00\" (never a float), got {v!r}")
        return None


def _match(r: Mapping, path: str, problems: list[str]) -> Match:
    seq = r.get("sequence", [])
    seq = seq if isinstance(seq, list) else [seq]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seq):
        problems.append(f"{path}.sequence: whole numbers expected")
        seq = []
    chance = r.get("chance")
    if chance is not None and not (isinstance(chance, (int, float)) and not isinstance(chance, bool) and 0 <= chance <= 1):
        problems.append(f"{path}.chance: a probability between 0 and 1, got {chance!r}")
        chance = None
    limit = r.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append(f"{path}.limit: a whole number >= 1, got {limit!r}")
        limit = None
    for k in ("end_to_end_id", "file"):
        if k in r and not isinstance(r[k], str):
            problems.append(f"{path}.{k}: a glob pattern (text) expected")
    return Match(
        account=_texts(r.get("account"), f"{path}.account", problems),
        name=_texts(r.get("name"), f"{path}.name", problems),
        id_number=_texts(r.get("id_number"), f"{path}.id_number", problems),
        end_to_end_id=r.get("end_to_end_id") if isinstance(r.get("end_to_end_id"), str) else None,
        file=r.get("file") if isinstance(r.get("file"), str) else None,
        sequence=tuple(seq),
        amount=_amount(r.get("amount"), f"{path}.amount", problems),
        amount_min=_amount(r.get("amount_min"), f"{path}.amount_min", problems),
        amount_max=_amount(r.get("amount_max"), f"{path}.amount_max", problems),
        chance=float(chance) if chance is not None else None,
        limit=limit,
    )
