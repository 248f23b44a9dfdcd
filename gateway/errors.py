"""Error roots of the gateway.

``YktError`` is what the CLI turns into a plain message and exit status 1 (no traceback unless
``--debug``). Each carries an English message and, where a clerk reads it, a Chinese one.
"""

from __future__ import annotations


class YktError(Exception):
    """Root of every error the gateway reports to a person."""

    def __init__(self, message: str, *, zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh

    def plain(self) -> str:
        return f"{self.zh}\n{self.message}" if self.zh else self.message


class ConfigError(YktError):
    """The configuration has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list) -> None:
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"configuration has {len(self.problems)} problem(s):\n{lines}", zh="配置有误")


class CalendarError(YktError, ValueError):
    """A date or working-day question that cannot be answered."""


class ImmutableRecordError(YktError):
    """An attempt to change a submitted batch, item or event (Art. 15): refused by the database."""
