"""The one reason-code table: project reason codes (ISO 20022 external status reason codes) and the
words banks use for them.

Banks answer a failed credit with their own text (户名不符, 账户已销户, 卡号不存在 ...) or their own
code. :meth:`ReasonTable.map_bank_text` turns that into one project :class:`Reason`; text the table
does not know maps to ``NARR`` and the bank's words are kept in ``bank_text``: nothing is lost.

The table is data (``config/reason_codes.toml``); the caller parses the TOML and passes the mapping::

    [codes.AC04]
    zh = "账户已销户"
    en = "Closed account number"
    explain = "The bank says this account has been closed. ..."
    bank_texts = ["账户已销户", "已销户", "销户"]

>>> table = ReasonTable.from_mapping({"codes": {
...     "AC04": {"zh": "账户已销户", "en": "Closed account", "explain": "Account closed.", "bank_texts": ["账户已销户", "销户"]},
...     "NARR": {"zh": "其他", "en": "Other", "explain": "See the bank's words.", "bank_texts": []}}}, source="t")
>>> table.map_bank_text(" 该账户已销户 ").code
'AC04'
>>> r = table.map_bank_text("系统繁忙")
>>> r.code, r.bank_text
('NARR', '系统繁忙')
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from formats.errors import FormatError

OTHER = "NARR"
_CODE = re.compile(r"[A-Z0-9]{4}")
_CODE_KEYS = ("zh", "en", "explain", "bank_texts")


class ReasonTableError(FormatError):
    """The reason table mapping is not valid; ``problems`` lists every one as ``source: path: message``."""

    def __init__(self, problems: list[tuple[str, str]], *, source: str) -> None:
        self.problems = tuple(f"{source}: {path}: {msg}" for path, msg in problems)
        n = len(problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in reason table\n" + "\n".join(self.problems),
                         source=source, field=problems[0][0] if problems else None)

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True)
class Reason:
    """A project reason: ``code`` (e.g. ``AC04``), Chinese and English descriptions, a plain
    explanation for a township clerk, and — when it came from a bank — the bank's own words."""

    code: str
    zh: str
    en: str
    explain: str = ""
    bank_text: str | None = None


def normalize_bank_text(text: str) -> str:
    """Fold full-width forms (NFKC) and case, drop whitespace and trailing punctuation: the matching key."""
    folded = unicodedata.normalize("NFKC", text).upper()
    folded = "".join(ch for ch in folded if not ch.isspace())
    return folded.strip("。.!！,，;；:：")


@dataclass(frozen=True)
class ReasonTable:
    """Project reason codes and the bank texts/codes that mean each of them. Build with :meth:`from_mapping`."""

    reasons: Mapping[str, Reason]
    bank_texts: Mapping[str, str]  # normalized bank text or code -> project code
    preferred_text: Mapping[str, str]  # project code -> the bank text to write (first listed)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> "ReasonTable":
        """Check ``data`` (parsed ``reason_codes.toml``) and build the table.

        :raises ReasonTableError: listing every problem with its key path (unknown keys, bad codes,
            missing descriptions, a bank text listed under two codes, no ``NARR``).
        """
        problems: list[tuple[str, str]] = []
        if not isinstance(data, Mapping):
            raise ReasonTableError([("", f"expected a table, got {type(data).__name__}")], source=source)
        for k in data:
            if k != "codes":
                problems.append((str(k), "unknown key (allowed: codes)"))
        codes = data.get("codes")
        if not isinstance(codes, Mapping) or not codes:
            problems.append(("codes", "missing or empty table of reason codes"))
            codes = {}
        reasons: dict[str, Reason] = {}
        texts: dict[str, str] = {}
        where: dict[str, str] = {}
        preferred: dict[str, str] = {}
        for code, entry in codes.items():
            path = f"codes.{code}"
            if not _CODE.fullmatch(str(code)):
                problems.append((path, "a reason code is four capital letters or digits (e.g. AC04)"))
            if not isinstance(entry, Mapping):
                problems.append((path, f"expected a table, got {entry!r}"))
                continue
            for k in entry:
                if k not in _CODE_KEYS:
                    problems.append((f"{path}.{k}", f"unknown key (allowed: {', '.join(_CODE_KEYS)})"))
            for k in ("zh", "en", "explain"):
                v = entry.get(k)
                if not isinstance(v, str) or not v.strip():
                    problems.append((f"{path}.{k}", "missing or empty text"))
            bank = entry.get("bank_texts", [])
            if not isinstance(bank, list):
                problems.append((f"{path}.bank_texts", f"expected an array of texts, got {bank!r}"))
                bank = []
            for i, t in enumerate(bank):
                tpath = f"{path}.bank_texts[{i}]"
                if not isinstance(t, str) or not normalize_bank_text(t):
                    problems.append((tpath, f"expected a non-empty text, got {t!r}"))
                    continue
                key = normalize_bank_text(t)
                if key in texts and texts[key] != code:
                    problems.append((tpath, f"{t!r} is already listed under {texts[key]} at {where[key]}"))
                elif key in texts:
                    problems.append((tpath, f"{t!r} is listed twice"))
                else:
                    texts[key] = str(code)
                    where[key] = tpath
                    preferred.setdefault(str(code), t)
            reasons[str(code)] = Reason(code=str(code), zh=str(entry.get("zh", "")), en=str(entry.get("en", "")),
                                        explain=str(entry.get("explain", "")))
        if codes and OTHER not in codes:
            problems.append((f"codes.{OTHER}", "missing: unknown bank texts map to NARR"))
        if problems:
            raise ReasonTableError(problems, source=source)
        # Longest texts first, so that 批次号重复 (DU01) wins over 重复 (AM05) as a substring.
        ordered = dict(sorted(texts.items(), key=lambda kv: -len(kv[0])))
        return cls(reasons=MappingProxyType(reasons), bank_texts=MappingProxyType(ordered),
                   preferred_text=MappingProxyType(preferred))

    def get(self, code: str) -> Reason:
        """The reason for a project code. :raises KeyError: for a code not in the table."""
        return self.reasons[code]

    def __contains__(self, code: object) -> bool:
        return code in self.reasons

    def __iter__(self) -> Iterator[Reason]:
        return iter(self.reasons.values())

    def map_bank_text(self, text: str | None) -> Reason:
        """Map a bank's reason text or code to a project :class:`Reason` with ``bank_text`` = ``text``.

        Exact match (after :func:`normalize_bank_text`) first, then the longest known text contained
        in ``text``; anything else, including empty text, is ``NARR``. Never raises for any string.
        """
        original = text if text else None
        key = normalize_bank_text(text or "")
        code = self.bank_texts.get(key)
        if code is None and key:
            code = next((c for t, c in self.bank_texts.items() if t in key), None)
        return replace(self.reasons[code or OTHER], bank_text=original)

    def bank_text_for(self, code: str) -> str:
        """The text a bank (the simulator) writes for a project code: the first listed, else the Chinese description."""
        return self.preferred_text.get(code) or self.get(code).zh
