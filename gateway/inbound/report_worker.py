"""Read a long ISO 20022 bank report in a worker process while this process applies it.

Applying a report is two kinds of work: reading the XML (parsing, checking it against the XSD,
turning each entry into an :class:`~reconciliation.outcomes.Outcome`: pure CPU) and matching the
outcomes against the database. One process does them one after the other; with a second core a
worker reads while this process matches, and a report is applied in about the time of the larger
half. One worker process serves the whole gateway process; it is started on first use.

Promises:

* The worker hands over exactly what :func:`iso_outcomes` yields in-process, in the same order,
  and raises the same :class:`~formats.errors.FormatError` (file, line, field, value) at the same
  point, so a report is applied or refused exactly as it would be without it.
* Memory stays flat: outcomes cross in chunks of :data:`CHUNK`, at most :data:`AHEAD` chunks
  ahead of the apply; the worker waits while they are not taken.
* Nothing is lost if the worker dies, or says nothing for :data:`STALL_S` seconds (it is then
  stopped): the rest of the report is read in-process, after the outcomes already handed over.
* A caller that stops early (an error while applying) leaves no worker reading on: that worker
  is stopped, and the next report starts a new one.
* One report at a time uses the worker; a report that arrives meanwhile is read in-process, as
  is every report shorter than :data:`MIN_BYTES` (a worker saves nothing there).
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterator

from formats.errors import FormatError

log = logging.getLogger(__name__)

MIN_BYTES = 1 << 20  # about 4,500 pain.002 lines: below this the in-process read is quicker than handing over
CHUNK = 1000
STALL_S = 120  # a worker silent this long is stopped and the report read in-process
AHEAD = 16  # chunks read ahead of the apply (16,000 outcomes, a few MB), while it matches the ones it took
KINDS = ("pain.002", "camt.053", "camt.054")


def iso_outcomes(kind: str, content: bytes, source: str) -> Iterator:
    """The outcomes of an ISO 20022 report of ``kind`` (as :func:`formats.iso20022.detect.detect`
    names it), read from ``content``; a header problem raises at once, a later one when reached."""
    from reconciliation.outcomes import from_entries, from_status_report

    if kind.startswith("pain.002"):
        from formats.iso20022.pain002 import open_pain002

        r = open_pain002(io.BytesIO(content), source=source)
        return from_status_report(r.header, r)
    if kind.startswith("camt.054"):
        from formats.iso20022.camt054 import open_camt054

        return from_entries(open_camt054(io.BytesIO(content), source=source))
    if kind.startswith("camt.053"):
        from formats.iso20022.camt053 import open_camt053

        return from_entries(open_camt053(io.BytesIO(content), source=source))
    raise ValueError(f"not an ISO 20022 report kind: {kind!r}")


def _serve(conn: Connection) -> None:
    """The worker: read each report sent, hand back its outcomes chunk by chunk (``o`` + pickle),
    then ``e`` (end); a format problem goes back as ``x`` + the exception itself, after the outcomes
    read before it; anything else as ``c`` + a description (a bug)."""
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        kind, content, source = job
        chunk: list = []
        try:
            for o in iso_outcomes(kind, content, source):
                chunk.append(o)
                if len(chunk) == CHUNK:
                    conn.send_bytes(b"o" + pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL))
                    chunk = []
            conn.send_bytes(b"o" + pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL))
            conn.send_bytes(b"e")
        except FormatError as e:
            conn.send_bytes(b"o" + pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL))
            conn.send_bytes(b"x" + pickle.dumps(e, pickle.HIGHEST_PROTOCOL))
        except (ConnectionError, EOFError):
            return  # the gateway stopped this report, or went away
        except Exception as e:  # a bug: the parent reads in-process and meets it there
            conn.send_bytes(b"c" + f"{type(e).__name__}: {e}".encode())


class ReportWorker:
    """One worker process reading reports for this process (see the module's promises)."""

    def __init__(self, *, min_bytes: int = MIN_BYTES) -> None:
        self.min_bytes = min_bytes
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while one runs (for tests and diagnostics)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def outcomes(self, kind: str, content: bytes, source: str) -> Iterator:
        """What ``iso_outcomes(kind, content, source)`` yields, read by the worker when it pays."""
        if len(content) < self.min_bytes or not kind.startswith(KINDS) or not self._lock.acquire(blocking=False):
            yield from iso_outcomes(kind, content, source)
            return
        handed, idle, messages = 0, False, None
        try:
            try:
                if self.pid is None:
                    self._start()
                self._conn.send((kind, content, source))
                messages = self._pumped(self._conn)
                for message in messages:
                    tag, body = message[:1], message[1:]
                    if tag == b"o":
                        for o in pickle.loads(body):
                            handed += 1
                            yield o
                        continue
                    idle = True
                    if tag == b"e":
                        return
                    if tag == b"x":
                        raise pickle.loads(body)
                    log.error("report worker failed on %s: %s; reading it here", source, body.decode(errors="replace"))
                    break
                else:
                    log.warning("report worker lost on %s; reading the rest here", source)
            except OSError as e:
                log.warning("report worker lost on %s (%s); reading the rest here", source, type(e).__name__)
            yield from islice(iso_outcomes(kind, content, source), handed, None)
        finally:
            if not idle:
                self.stop()  # first, so that the pump thread's wait for the worker ends
            if messages is not None:
                messages.close()
            self._lock.release()

    @staticmethod
    def _pumped(conn: Connection) -> Iterator[bytes]:
        """The worker's messages for one report, received by a thread into a queue of at most
        :data:`AHEAD`, so the worker reads on while this process matches; ends at the report's last
        message, or early if the worker is lost or silent for :data:`STALL_S` seconds."""
        q: queue.Queue = queue.Queue(AHEAD)
        done = threading.Event()

        def pump() -> None:
            while not done.is_set():
                try:
                    message = conn.recv_bytes()
                except (EOFError, OSError):
                    message = None
                while not done.is_set():
                    try:
                        q.put(message, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if message is None or message[:1] != b"o":
                    return

        thread = threading.Thread(target=pump, name="ykt-report-pump", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    message = q.get(timeout=STALL_S)
                except queue.Empty:
                    return  # a worker that says nothing for this long is as good as lost
                if message is None:
                    return
                yield message
                if message[:1] != b"o":
                    return
        finally:
            done.set()
            thread.join(5)

    def _start(self) -> None:
        # a fresh interpreter, not fork (which would copy this process's threads, connections and
        # keys) and not multiprocessing's spawn (which runs the caller's main module again)
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", __name__, str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
                                          close_fds=True, start_new_session=True)  # a terminal's Ctrl-C is ours
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())

    def stop(self) -> None:
        """Stop the worker, if one runs; the next long report starts a new one."""
        proc, conn, self._proc, self._conn = self._proc, self._conn, None, None
        if proc is not None:
            proc.kill()
            proc.wait(5)
        if conn is not None:
            conn.close()


WORKER = ReportWorker()
atexit.register(WORKER.stop)  # the worker would also leave at end of input, but not before its report

if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
