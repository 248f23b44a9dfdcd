"""What every importer of a clerk's table (roster, corrections, funding) reports: each problem with
its row, column and value in Chinese and English, and a refusal of the whole file."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import YktError


@dataclass(frozen=True)
class RowProblem:
    """One problem; ``row`` counts as a spreadsheet does (the header is row 1), None for the file."""

    row: int | None
    column: str | None
    value: str | None
    zh: str
    en: str

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        if self.column:
            where += f", column {self.column}"
        val = f" = {self.value!r}" if self.value is not None else ""
        return f"{where}{val}: {self.zh} / {self.en}"


class FileRefused(YktError):
    """A file refused whole; ``problems`` lists every problem (the first 50 in the message).

    Subclasses name what was refused and what did not happen (``what_en/what_zh``,
    ``outcome_en/outcome_zh``)."""

    what_en, what_zh = "file", "文件"
    outcome_en, outcome_zh = "nothing imported", "未导入任何数据"

    def __init__(self, source: str, problems: list[RowProblem]) -> None:
        self.source, self.problems = source, problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{source}: {self.what_en} refused, {len(problems)} problem(s), {self.outcome_en}:\n"
                         f"{shown}{more}",
                         zh=f"{source}：{self.what_zh}有 {len(problems)} 处错误，已整体退回，{self.outcome_zh}")
