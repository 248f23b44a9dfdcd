"""Collecting configuration problems: every one, with file and key path, never just the first."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

from formats.money import yuan


@dataclass(frozen=True)
class Problem:
    file: str
    key_path: str
    message: str
    severity: str = "error"  # or "warning": reported, does not fail the check

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else f" [{self.severity}]"
        where = f"{self.file}: {self.key_path}" if self.key_path else self.file
        return f"{where}: {self.message}{tag}"


_MISSING = object()


class Section:
    """Typed, checked access to one TOML table; each failed check appends a :class:`Problem`
    and returns ``None`` so the loader carries on and finds the next problem too."""

    def __init__(self, data: Any, file: str, path: str, problems: list[Problem]) -> None:
        self.file, self.path, self.problems = file, path, problems
        if not isinstance(data, dict):
            self.fail("", f"must be a table, got {type(data).__name__}")
            data = {}
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(self.file, self.key(name) if name else self.path, message, severity))

    def _get(self, name: str, required: bool, default: Any) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING:
            if required:
                self.fail(name, "is missing")
            return _MISSING if required else default
        return value

    def str(self, name: str, *, required: bool = True, default: str | None = None,
            pattern: str | None = None, choices: tuple[str, ...] | None = None, hint: str = "") -> str | None:
        v = self._get(name, required, default)
        if v is _MISSING or v is None:
            return None if v is _MISSING else v
        if not isinstance(v, str) or not v.strip():
            self.fail(name, f"must be non-empty text, got {v!r}")
            return None
        if pattern and not re.fullmatch(pattern, v):
            self.fail(name, f"{v!r} is not valid{': ' + hint if hint else ''}")
            return None
        if choices and v not in choices:
            self.fail(name, f"{v!r} is not one of {', '.join(choices)}")
            return None
        return v

    def int(self, name: str, *, required: bool = True, default: int | None = None, minimum: int | None = None) -> int | None:
        v = self._get(name, required, default)
        if v is _MISSING or v is None:
            return None if v is _MISSING else v
        if not isinstance(v, int) or isinstance(v, bool):
            self.fail(name, f"must be a whole number, got {v!r}")
            return None
        if minimum is not None and v < minimum:
            self.fail(name, f"must be at least {minimum}, got {v}")
            return None
        return v

    def amount(self, name: str, *, required: bool = True) -> Decimal | None:
        v = self._get(name, required, None)
        if v is _MISSING or v is None:
            return None
        if isinstance(v, float):
            self.fail(name, f"write amounts as quoted text with two decimals (\"{v:.2f}\"), never as a float: {v!r}")
            return None
        try:
            d = yuan(v)
        except (ValueError, TypeError, InvalidOperation):
            self.fail(name, f"is not an amount in yuan with at most two decimals: {v!r}")
            return None
        if d <= 0:
            self.fail(name, f"must be positive, got {v!r}")
            return None
        return d

    def time(self, name: str) -> dt.time | None:
        v = self._get(name, True, None)
        if v is _MISSING:
            return None
        if isinstance(v, dt.time):
            return v
        try:
            return dt.time.fromisoformat(str(v))
        except ValueError:
            self.fail(name, f"must be a time of day like \"15:30\", got {v!r}")
            return None

    def list_of_str(self, name: str, *, required: bool = True, check: Callable[[str], str | None] | None = None) -> tuple[str, ...]:
        v = self._get(name, required, [])
        if v is _MISSING:
            return ()
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(name, f"must be a list of text values, got {v!r}")
            return ()
        if check:
            for i, x in enumerate(v):
                msg = check(x)
                if msg:
                    self.fail(f"{name}[{i}]", msg)
        return tuple(v)

    def table(self, name: str, *, required: bool = True) -> "Section | None":
        v = self._get(name, required, None)
        if v is _MISSING or v is None:
            return None
        return Section(v, self.file, self.key(name), self.problems)

    def path_value(self, name: str, base: Path) -> Path | None:
        v = self.str(name)
        return None if v is None else (base / v)

    def unknown_keys(self, allowed: set[str]) -> None:
        for k in self.data:
            if k not in allowed:
                self.fail(k, "is not a known setting (typo?)")
