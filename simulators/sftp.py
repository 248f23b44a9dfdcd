"""The bank's SFTP server (twisted.conch), OpenSSH-compatible: only moves bytes.

One user per bank (``transport.username``), password or public-key login. The user sees ``/inbox``
and ``/outbox`` (``/outbox/archive``) of the bank's directory and nothing else. An instruction file
is uploaded as ``/inbox/.<name>.part`` and *renamed* to ``/inbox/<name>``: the rename hands it to
the bank (``on_complete(name, path) -> Deferred``), and the rename's answer is the bank's verdict
(a refused replay fails the rename with the reason; every other outcome succeeds and is told by the
receipt and the reports). Writing an instruction file under its final name is refused.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as stat_mod
from pathlib import Path
from typing import Callable

from twisted.conch.avatar import ConchUser
from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
from twisted.conch.interfaces import ISession, ISessionSetEnv, ISFTPFile, ISFTPServer
from twisted.conch.ls import lsLine
from twisted.conch.ssh import factory, filetransfer, keys, session
from twisted.conch.ssh.filetransfer import FX_FAILURE, FX_PERMISSION_DENIED, SFTPError
from twisted.cred import portal
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet import defer
from twisted.python import components
from zope.interface import implementer


class SftpSite:
    """What the SFTP server serves for one bank: its directory and the hand-over of complete files.

    :param root: the bank's directory (``inbox/``, ``outbox/`` inside).
    :param is_instruction: ``name -> bool``: a final instruction file name (handed over on rename).
    :param on_complete: ``(name, path) -> Deferred[Intake]`` once a file is renamed to its final name.
    :param available: ``() -> bool``; False during an outage window (connections are dropped).
    """

    def __init__(self, root: Path, *, is_instruction: Callable[[str], bool], on_complete, available=lambda: True):
        self.root = Path(root)
        self.is_instruction = is_instruction
        self.on_complete = on_complete
        self.available = available


class _SftpSession(session.SSHSession):
    """Closes the channel when the client is done with the subsystem (EOF), as OpenSSH expects."""

    def eofReceived(self):
        if self.client is not None:
            self.conn.sendClose(self)
        else:
            super().eofReceived()


class BankUser(ConchUser):
    def __init__(self, site: SftpSite, username: bytes) -> None:
        super().__init__()
        self.site = site
        self.username = username
        self.channelLookup[b"session"] = _SftpSession
        self.subsystemLookup[b"sftp"] = filetransfer.FileTransferServer

    def logout(self) -> None:
        pass


@implementer(portal.IRealm)
class _Realm:
    def __init__(self, site: SftpSite) -> None:
        self.site = site

    def requestAvatar(self, avatarId, mind, *interfaces):
        user = BankUser(self.site, avatarId)
        return interfaces[0], user, user.logout


def _ascii(text: str) -> str:
    """Twisted sends SFTP status messages as ASCII only (a non-ASCII message is never answered at all):
    the bank's words in Chinese are in the receipt and the report, the status carries the code."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _attrs(s: os.stat_result) -> dict:
    return {"size": s.st_size, "uid": 0, "gid": 0, "permissions": s.st_mode,
            "atime": int(s.st_atime), "mtime": int(s.st_mtime)}


@implementer(ISFTPFile)
class _File:
    def __init__(self, path: Path, flags: int) -> None:
        mode = os.O_RDONLY
        if flags & filetransfer.FXF_WRITE:
            mode = os.O_RDWR if flags & filetransfer.FXF_READ else os.O_WRONLY
        for f, o in ((filetransfer.FXF_APPEND, os.O_APPEND), (filetransfer.FXF_CREAT, os.O_CREAT),
                     (filetransfer.FXF_TRUNC, os.O_TRUNC), (filetransfer.FXF_EXCL, os.O_EXCL)):
            if flags & f:
                mode |= o
        self.fd = os.open(path, mode, 0o644)

    def close(self):
        os.close(self.fd)

    def readChunk(self, offset, length):
        return os.pread(self.fd, length, offset)

    def writeChunk(self, offset, data):
        os.pwrite(self.fd, data, offset)

    def getAttrs(self):
        return _attrs(os.fstat(self.fd))

    def setAttrs(self, attrs):
        pass  # permissions and times of uploads are the bank's business


class _Dir:
    def __init__(self, path: Path, hide: set[str]) -> None:
        self.path = path
        self.names = sorted(n for n in os.listdir(path) if n not in hide)

    def __iter__(self):
        return self

    def __next__(self):
        if not self.names:
            raise StopIteration
        name = self.names.pop(0)
        s = os.lstat(self.path / name)
        return name, lsLine(name, s), _attrs(s)

    def close(self):
        self.names = []


@implementer(ISFTPServer)
class BankSFTPServer:
    """``ISFTPServer`` over one bank's directory: a virtual ``/`` with ``inbox`` and ``outbox``."""

    def __init__(self, avatar: BankUser) -> None:
        self.site = avatar.site

    def _virtual(self, path) -> str:
        text = path.decode("utf-8") if isinstance(path, bytes) else path
        return posixpath.normpath("/" + text.lstrip("/"))  # normpath keeps a leading "//"

    def _real(self, path, *, write: bool = False) -> Path:
        v = self._virtual(path)
        top = v.split("/")[1] if v != "/" else ""
        if top not in ("", "inbox", "outbox"):
            raise SFTPError(filetransfer.FX_NO_SUCH_FILE, f"{_ascii(v)}: no such file or directory")
        if write and not (v.startswith("/inbox/") or v.startswith("/outbox/")):
            raise SFTPError(FX_PERMISSION_DENIED, f"{_ascii(v)}: read-only")
        if write and v.startswith("/inbox/receipts"):
            raise SFTPError(FX_PERMISSION_DENIED, f"{_ascii(v)}: receipts are written by the bank")
        return self.site.root / v.lstrip("/")

    def gotVersion(self, otherVersion, extData):
        return {}

    def openFile(self, filename, flags, attrs):
        writing = bool(flags & (filetransfer.FXF_WRITE | filetransfer.FXF_CREAT | filetransfer.FXF_TRUNC))
        path = self._real(filename, write=writing)
        if writing:
            v = self._virtual(filename)
            if not v.startswith("/inbox/"):
                raise SFTPError(FX_PERMISSION_DENIED, f"{_ascii(v)}: uploads go to /inbox")
            if self.site.is_instruction(posixpath.basename(v)):
                raise SFTPError(FX_PERMISSION_DENIED,
                                f"{_ascii(v)}: upload as /inbox/.{posixpath.basename(v)}.part, then rename it to its final name")
        return _File(path, flags)

    def removeFile(self, filename):
        v = self._virtual(filename)
        path = self._real(filename, write=True)
        if v.startswith("/inbox/") and not posixpath.basename(v).startswith("."):
            raise SFTPError(FX_PERMISSION_DENIED, f"{_ascii(v)}: files taken by the bank cannot be removed")
        os.remove(path)

    def renameFile(self, oldpath, newpath):
        old_v, new_v = self._virtual(oldpath), self._virtual(newpath)
        old, new = self._real(oldpath, write=True), self._real(newpath, write=True)
        if posixpath.dirname(old_v) != posixpath.dirname(new_v) and not (
                old_v.startswith("/outbox/") and new_v.startswith("/outbox/archive/")):
            raise SFTPError(FX_PERMISSION_DENIED, "rename within /inbox, or from /outbox to /outbox/archive")
        name = posixpath.basename(new_v)
        if new_v.startswith("/inbox/") and self.site.is_instruction(name):
            if not old.is_file():
                raise SFTPError(filetransfer.FX_NO_SUCH_FILE, f"{_ascii(old_v)}: no such file")
            d = defer.maybeDeferred(self.site.on_complete, name, old)

            def verdict(intake):
                if intake.replay:
                    r = intake.receipt
                    raise SFTPError(FX_FAILURE, f"refused: {r.reason_code} (MsgId {r.msg_id} was taken before with "
                                                f"other bytes); report {', '.join(r.reports)}")
                return None

            def failed(f):
                if f.check(SFTPError):
                    return f
                raise SFTPError(FX_FAILURE, _ascii(f"refused: {f.getErrorMessage()}"))

            return d.addCallback(verdict).addErrback(failed)
        os.replace(old, new)
        return None

    def makeDirectory(self, path, attrs):
        raise SFTPError(FX_PERMISSION_DENIED, "the bank's folders are fixed")

    def removeDirectory(self, path):
        raise SFTPError(FX_PERMISSION_DENIED, "the bank's folders are fixed")

    def openDirectory(self, path):
        real = self._real(path)
        if not real.is_dir():
            raise SFTPError(filetransfer.FX_NO_SUCH_FILE, f"{_ascii(self._virtual(path))}: not a directory")
        return _Dir(real, {"state"} if self._virtual(path) == "/" else set())

    def getAttrs(self, path, followLinks):
        real = self._real(path)
        try:
            return _attrs(os.stat(real))
        except FileNotFoundError:
            raise SFTPError(filetransfer.FX_NO_SUCH_FILE, f"{_ascii(self._virtual(path))}: no such file") from None

    def setAttrs(self, path, attrs):
        self._real(path, write=True)

    def readLink(self, path):
        raise SFTPError(filetransfer.FX_OP_UNSUPPORTED, "no links")

    def makeLink(self, linkPath, targetPath):
        raise SFTPError(filetransfer.FX_OP_UNSUPPORTED, "no links")

    def realPath(self, path):
        return self._virtual(path)

    def extendedRequest(self, extName, extData):
        raise NotImplementedError


@implementer(ISession, ISessionSetEnv)
class _NoShell:
    """Sessions exist only for the sftp subsystem: no shell, no commands; environment ignored."""

    def __init__(self, avatar) -> None:
        self.avatar = avatar

    def getPty(self, term, windowSize, modes):
        raise NotImplementedError("no terminal")

    def openShell(self, proto):
        raise NotImplementedError("no shell: sftp only")

    def execCommand(self, proto, command):
        raise NotImplementedError("no commands: sftp only")

    def windowChanged(self, newWindowSize):
        pass

    def eofReceived(self):
        pass

    def closed(self):
        pass

    def setEnv(self, name, value):
        pass


components.registerAdapter(BankSFTPServer, BankUser, ISFTPServer)
components.registerAdapter(_NoShell, BankUser, ISession)


class BankSSHFactory(factory.SSHFactory):
    """An SSH server for one bank. ``site.available()`` False: new connections are dropped at once."""

    def __init__(self, site: SftpSite, *, host_key: Path, username: str, password: str | None,
                 authorized_keys: list[Path]) -> None:
        self.site = site
        key = keys.Key.fromFile(str(host_key))
        self.publicKeys = {key.sshType(): key.public()}
        self.privateKeys = {key.sshType(): key}
        p = portal.Portal(_Realm(site))
        user = username.encode()
        if password:
            p.registerChecker(InMemoryUsernamePasswordDatabaseDontUse(**{username: password.encode()}))
        db = InMemorySSHKeyDB({user: [keys.Key.fromFile(str(k)) for k in authorized_keys]})
        p.registerChecker(SSHPublicKeyChecker(db))
        self.portal = p

    def buildProtocol(self, addr):
        if not self.site.available():
            return None
        return super().buildProtocol(addr)

    def getPrimes(self):
        return None
