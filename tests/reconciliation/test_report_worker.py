"""The report worker (issue 6) reads a long bank report in its own process while the gateway
applies it. It must change nothing of what is applied: the same outcomes in the same order, the
same error at the same place, nothing lost when the worker dies, no worker left reading when the
caller stops. Every test compares the worker with the in-process read of the same bytes."""

from __future__ import annotations

import io
import os
import re
import signal

import pytest

from formats.errors import FormatError
from formats.iso20022 import testing as t
from formats.iso20022.camt054 import write_camt054
from formats.iso20022.pain002 import write_pain002
from gateway.inbound.report_worker import ReportWorker, iso_outcomes

N = 3000
KIND = "pain.002.001.12"


@pytest.fixture(scope="module")
def pain002() -> bytes:
    out = io.BytesIO()
    write_pain002(out, t.sample_status_header(N), t.sample_status_lines(N))
    return out.getvalue()


@pytest.fixture(scope="module")
def long_pain002() -> bytes:
    """Long enough (30,000 lines) that the worker is still reading when a test stops or kills it."""
    out = io.BytesIO()
    write_pain002(out, t.sample_status_header(10 * N), t.sample_status_lines(10 * N))
    return out.getvalue()


@pytest.fixture
def worker():
    w = ReportWorker(min_bytes=0)  # every report through the worker, however short
    yield w
    w.stop()


def _read_until_error(outcomes):
    got = []
    try:
        for o in outcomes:
            got.append(o)
    except FormatError as e:
        return got, e
    return got, None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a killed child not yet reaped is a zombie, not a reader
        return f.read().split(") ", 1)[1][0] != "Z"


def test_worker_hands_over_exactly_the_in_process_outcomes(worker, pain002):
    expected = list(iso_outcomes(KIND, pain002, "r.xml"))
    assert len(expected) == N  # every line is final (ACSC or RJCT): one outcome each
    assert list(worker.outcomes(KIND, pain002, "r.xml")) == expected
    first = worker.pid
    assert first is not None and first != os.getpid()
    assert list(worker.outcomes(KIND, pain002, "r.xml")) == expected
    assert worker.pid == first  # one worker serves report after report


def test_camt054_through_the_worker(worker):
    out = io.BytesIO()
    write_camt054(out, t.sample_notification_header(), t.sample_entries(N))
    data = out.getvalue()
    expected = list(iso_outcomes("camt.054.001.08", data, "n.xml"))
    assert expected and list(worker.outcomes("camt.054.001.08", data, "n.xml")) == expected
    assert worker.pid is not None


def test_a_bad_line_gives_the_same_error_after_the_same_outcomes(worker, pain002):
    bad = pain002.replace(b"<OrgnlEndToEndId>E0000002000</OrgnlEndToEndId><TxSts>RJCT</TxSts>",
                          b"<OrgnlEndToEndId>E0000002000</OrgnlEndToEndId><TxSts>NOPE!</TxSts>")
    assert bad != pain002
    here, here_err = _read_until_error(iso_outcomes(KIND, bad, "bad.xml"))
    there, there_err = _read_until_error(worker.outcomes(KIND, bad, "bad.xml"))
    assert here_err is not None and there_err is not None
    assert type(there_err) is type(here_err)
    assert (there_err.source, there_err.line, there_err.field, there_err.message) == (
        here_err.source, here_err.line, here_err.field, here_err.message)
    assert there == here and len(here) < N
    pid = worker.pid
    assert pid is not None  # an error in the report is not the worker's failure: it stays for the next
    assert list(worker.outcomes(KIND, pain002, "r.xml")) == list(iso_outcomes(KIND, pain002, "r.xml"))
    assert worker.pid == pid


def test_a_worker_killed_midway_loses_nothing(worker, long_pain002, caplog):
    expected = list(iso_outcomes(KIND, long_pain002, "r.xml"))
    got = []
    for o in worker.outcomes(KIND, long_pain002, "r.xml"):
        got.append(o)
        if len(got) == 10:
            os.kill(worker.pid, signal.SIGKILL)
    assert got == expected  # the rest read in-process, after the ten already handed over
    assert any(re.search("lost|failed", r.getMessage()) for r in caplog.records)
    assert list(worker.outcomes(KIND, long_pain002, "r.xml")) == expected  # and a new worker serves the next


def test_a_caller_that_stops_early_leaves_no_worker_reading(worker, pain002):
    it = worker.outcomes(KIND, pain002, "r.xml")
    first = [next(it) for _ in range(5)]
    pid = worker.pid
    assert pid is not None
    it.close()  # e.g. the apply failed and its transaction rolled back
    assert worker.pid is None and not _alive(pid)
    assert first == list(iso_outcomes(KIND, pain002, "r.xml"))[:5]
    assert len(list(worker.outcomes(KIND, pain002, "r.xml"))) == N


def test_a_second_report_meanwhile_is_read_in_process(worker, pain002):
    expected = list(iso_outcomes(KIND, pain002, "r.xml"))
    first = worker.outcomes(KIND, pain002, "r.xml")
    head = [next(first) for _ in range(3)]
    pid = worker.pid
    assert list(worker.outcomes(KIND, pain002, "r.xml")) == expected  # did not wait for the busy worker
    assert worker.pid == pid
    assert head + list(first) == expected


def test_short_reports_stay_in_process(pain002):
    w = ReportWorker()  # the default threshold
    short = io.BytesIO()
    write_pain002(short, t.sample_status_header(20), t.sample_status_lines(20))
    assert len(list(w.outcomes(KIND, short.getvalue(), "s.xml"))) == 20
    assert w.pid is None


def test_a_stalled_worker_is_stopped_and_the_report_read_here(worker, long_pain002, monkeypatch):
    from gateway.inbound import report_worker

    monkeypatch.setattr(report_worker, "STALL_S", 0.5)
    long = long_pain002
    expected = list(iso_outcomes(KIND, long, "r.xml"))
    got = []
    for o in worker.outcomes(KIND, long, "r.xml"):
        got.append(o)
        if len(got) == 1:
            stalled = worker.pid
            os.kill(stalled, signal.SIGSTOP)  # alive, but says nothing more
    assert got == expected
    assert not _alive(stalled)
