"""Folder transport, for banks that exchange files by hand (a shared or removable folder).

The same rules as SFTP, on a local file system: a file appears in ``outgoing/`` under its final
name only when it is complete (written as ``.<name>.part``, flushed to disk, then linked to its
final name, which never replaces an existing file); the detached signature goes first. Reports
are the files in ``incoming/`` (hidden, ``.part`` and signature files left out); acknowledging one
moves it, then its signature, into ``incoming/archive/``.

File work runs in the reactor's thread pool so a large copy never blocks the reactor. A folder that
does not exist (an unmounted share) is :class:`BankUnavailable`; other file-system errors are
:class:`TransferFailed` (permission errors not retryable).
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from twisted.internet import defer, threads

from gateway.transports.base import (
    CHUNK_SIZE,
    SIGNATURE_EXTS,
    BankUnavailable,
    Payload,
    Receipt,
    RemoteRefused,
    TransferFailed,
    TransportError,
    check_name,
    check_signature,
    is_report_name,
    open_payload,
    payload_size,
    sha256_of,
)


class FolderClient:
    """Exchange files with one bank through two folders. Implements ``BankTransport``.

    :param reactor: its thread pool does the file work.
    :param outgoing: where our instruction files go (the bank collects them).
    :param incoming: where the bank's reports are put for us.
    :param bank: the bank id, for messages.
    :param signature_exts: extensions of signature files beside reports.
    """

    def __init__(self, *, reactor, outgoing: Path, incoming: Path, bank: str | None = None,
                 signature_exts=SIGNATURE_EXTS) -> None:
        self.reactor = reactor
        self.outgoing, self.incoming = Path(outgoing), Path(incoming)
        self.archive = self.incoming / "archive"
        self.bank = bank
        self.signature_exts = tuple(signature_exts)

    # -- public face ------------------------------------------------------------------------

    def deliver(self, name: str, data: Payload, signature: bytes | None = None, *,
                signature_ext: str | None = None):
        """Write ``outgoing/<name>`` atomically (signature first); ``already_there`` when the same
        bytes are already there; :class:`RemoteRefused` when other bytes are."""
        return self._in_thread(self._deliver, name, data, signature, signature_ext)

    def list_reports(self):
        """Sorted names of the reports in ``incoming/``."""
        return self._in_thread(self._list_reports)

    def fetch_report(self, name: str):
        """``(bytes, signature or None)``."""
        return self._in_thread(self._fetch_report, name)

    def ack_report(self, name: str):
        """Move the report, then its signature, into ``incoming/archive/``; harmless if repeated."""
        return self._in_thread(self._ack_report, name)

    def close(self):
        """Nothing to close."""
        return defer.succeed(None)

    # -- work (in a pool thread) --------------------------------------------------------------

    def _in_thread(self, fn, *args):
        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), fn, *args)
        return d.addErrback(self._translate)

    def _translate(self, f):
        if f.check(TransportError, ValueError):
            return f
        e = f.value
        where = f"folder transport{f' (bank {self.bank})' if self.bank else ''}"
        if isinstance(e, FileNotFoundError) and not (self.outgoing.is_dir() and self.incoming.is_dir()):
            raise BankUnavailable(f"{where}: folder missing (not mounted?): {e}",
                                  zh="交换文件夹不存在（可能未挂载）", bank=self.bank) from e
        if isinstance(e, OSError):
            raise TransferFailed(f"{where}: {e}", bank=self.bank,
                                 retryable=not isinstance(e, PermissionError)) from e
        return f

    def _deliver(self, name, data, signature, signature_ext) -> Receipt:
        check_name(name)
        ext = check_signature(signature, signature_ext)
        size = payload_size(data)
        final = self.outgoing / name
        if not self.outgoing.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such folder", str(self.outgoing))
        if final.exists():
            return self._already_there(final, data, size, ext)
        sig_name = None
        if signature is not None:
            sig_name = f"{name}.{ext}"
            tmp = self.outgoing / f".{sig_name}.part"
            _write(tmp, open_payload(signature))
            os.replace(tmp, self.outgoing / sig_name)
        part = self.outgoing / f".{name}.part"
        written, digest = _write(part, open_payload(data))
        try:
            os.link(part, final)  # fails if the final name exists: never replaces a file
        except FileExistsError:
            part.unlink()
            return self._already_there(final, data, size, ext)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if final.exists():  # a file system without hard links (some shares): check, then rename
                part.unlink()
                return self._already_there(final, data, size, ext)
            os.rename(part, final)
        else:
            part.unlink()
        _fsync_dir(self.outgoing)
        return Receipt(name=name, size=written, sha256=digest, signature_name=sig_name)

    def _already_there(self, final: Path, data, size: int, ext) -> Receipt:
        digest = sha256_of(data)
        if final.stat().st_size != size or sha256_of(final) != digest:
            raise RemoteRefused(f"{final} already exists with other content; not replaced",
                                zh=f"交换文件夹中已有同名但内容不同的文件 {final.name}，不会覆盖", bank=self.bank)
        return Receipt(name=final.name, size=size, sha256=digest, already_there=True,
                       signature_name=f"{final.name}.{ext}" if ext else None)

    def _list_reports(self) -> list[str]:
        return sorted(e.name for e in os.scandir(self.incoming)
                      if e.is_file(follow_symlinks=False) and is_report_name(e.name, self.signature_exts))

    def _fetch_report(self, name: str):
        check_name(name)
        path = self.incoming / name
        try:
            data = path.read_bytes()
        except FileNotFoundError as e:
            if not self.incoming.is_dir():
                raise
            raise TransferFailed(f"no report {path}", zh=f"没有报告 {name}", bank=self.bank,
                                 retryable=False) from e
        for ext in self.signature_exts:
            sig = self.incoming / f"{name}.{ext}"
            if sig.is_file():
                return data, sig.read_bytes()
        return data, None

    def _ack_report(self, name: str) -> None:
        check_name(name)
        self.archive.mkdir(exist_ok=True)
        for n in [name] + [f"{name}.{ext}" for ext in self.signature_exts]:
            src, dst = self.incoming / n, self.archive / n
            if not src.exists():
                continue  # no such signature, or acknowledged before
            if dst.exists():
                raise TransferFailed(f"cannot archive {src}: {dst} already exists",
                                     zh=f"无法归档报告 {name}：归档目录已有同名文件", bank=self.bank, retryable=False)
            os.rename(src, dst)
        _fsync_dir(self.archive)
        _fsync_dir(self.incoming)


def _write(path: Path, source) -> tuple[int, str]:
    """Copy ``source`` (closed here) to ``path`` in chunks, flushed to disk; ``(size, sha256)``."""
    digest, size = hashlib.sha256(), 0
    with source, open(path, "wb") as out:
        for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)
