"""An ``xmllint --stream`` child that validates bytes against an XSD on another core.

Used by :class:`formats.xsd.XmllintTee` (a writer's own output) and by
:func:`formats.xmlsafe.safe_iterparse` (a long document a reader streams): the caller feeds the
document's bytes as it handles them and :meth:`XmllintValidator.close` says whether they were
valid. ``xmllint --stream`` uses libxml2's strict reader: constant memory, no recovery, no
network (``--nonet``), so a truncated or broken document fails as well as one that breaks the XSD,
and a violation is reported with its line (the in-process streaming validator gives none).
"""

from __future__ import annotations

import fcntl
import functools
import re
import shutil
import subprocess
import threading

from formats.errors import FormatError, MalformedInput, SchemaViolation

_LINE = re.compile(r"^-:(\d+): (.*)$", re.MULTILINE)
#: the element libxml2 names in a validity error
_ELEMENT = re.compile(r"^Element '(?:\{[^}]*\})?([^']+)'")
_F_SETPIPE_SZ = 1031


@functools.lru_cache(maxsize=None)
def xmllint_executable() -> str | None:
    """Path of ``xmllint`` (Debian's libxml2-utils) or ``None`` when it is not installed."""
    return shutil.which("xmllint")


class XmllintValidator:
    """Validate the bytes given to :meth:`feed` against ``xsd``; :meth:`close` raises what xmllint
    found as :class:`SchemaViolation` (XSD) or :class:`MalformedInput` (not well-formed,
    truncated), naming ``source`` and the line. If the child stops early (it found something),
    the next :meth:`feed` raises that error at once. :meth:`kill` stops it without a verdict
    (the caller gave up on the document).

    :raises FileNotFoundError: ``executable`` is not installed.
    """

    def __init__(self, xsd, *, source: str, executable: str = "xmllint") -> None:
        self.source = source
        self._proc = subprocess.Popen(
            [executable, "--stream", "--noout", "--nonet", "--schema", str(xsd), "-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:  # a larger pipe means fewer switches between the two processes (Linux only)
            fcntl.fcntl(self._proc.stdin.fileno(), _F_SETPIPE_SZ, 1 << 20)
        except (OSError, AttributeError):  # pragma: no cover - other kernels
            pass
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self._error: FormatError | None = None
        self._done = False

    def _read_stderr(self) -> None:
        kept = 0
        for line in self._proc.stderr:
            if kept < 64 * 1024:  # keep the start; xmllint may repeat itself for a bad file
                self._stderr.append(line)
                kept += len(line)

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        try:
            self._proc.stdin.write(data)
        except (BrokenPipeError, ValueError):  # the child stopped early: it found something
            self._error = self._finish() or MalformedInput("xmllint stopped reading", source=self.source)
            raise self._error from None

    def _finish(self) -> FormatError | None:
        self._done = True
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        self._drain.join()
        said = b"".join(self._stderr).decode("utf-8", "replace")
        if code == 0 and "fails to validate" not in said and "failed to parse" not in said:
            return None
        return xmllint_error(said, code, self.source)

    def close(self) -> None:
        """Wait for the verdict; raise the :class:`FormatError` xmllint reported, if any."""
        if not self._done:
            self._error = self._error or self._finish()
        if self._error is not None:
            raise self._error

    def kill(self) -> None:
        """Stop the child without waiting for a verdict (idempotent). The stderr reader ends by
        itself when the child's pipe closes (it is not joined: this may run at interpreter exit)."""
        if not self._done:
            self._done = True
            self._proc.kill()
            self._proc.wait()
            try:
                self._proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass


def xmllint_error(said: str, code: int, source: str) -> FormatError:
    """xmllint's complaint as our error: the first ``-:LINE: ...`` message (with the element it
    names as the field), else its summary."""
    for m in _LINE.finditer(said):
        line, message = int(m.group(1)), m.group(2).strip()
        kind, _, detail = message.partition(" : ")
        named = _ELEMENT.search(detail)
        field = named.group(1) if named else None
        if "validity" in kind:
            return SchemaViolation(f"breaks the XSD (xmllint): {detail or message}", source=source, line=line,
                                   field=field)
        return MalformedInput(f"not well-formed XML (xmllint): {detail or message}", source=source, line=line,
                              field=field)
    summary = " ".join(line.strip() for line in said.splitlines()
                       if line.strip() and not line.startswith("Unimplemented block"))[:500]
    if "failed to parse" in said:
        return MalformedInput(f"not well-formed XML (xmllint): {summary}", source=source)
    return SchemaViolation(f"xmllint exited with {code}: {summary or 'no message'}", source=source)
