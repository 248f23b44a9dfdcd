"""Clocks for the simulator: the bank's time is an injected ``IReactorTime``.

* tests: :class:`twisted.internet.task.Clock` (advance by hand);
* standalone: the reactor itself, or :class:`WarpClock` — the reactor's time running ``factor``
  times faster from ``origin``, with :meth:`WarpClock.jump` to skip ahead (e.g. to the next working day).
"""

from __future__ import annotations

import datetime as dt

from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer


@implementer(IReactorTime)
class WarpClock:
    """Simulated time ``origin + (real elapsed) * factor + jumps``; delays are scaled down to real time.

    >>> from twisted.internet.task import Clock
    >>> real = Clock(); w = WarpClock(real, factor=3600, origin=1_000_000.0)
    >>> real.advance(2); w.seconds()            # two real seconds are two hours
    1007200.0
    >>> calls = []; _ = w.callLater(7200, calls.append, "x"); real.advance(1.999); calls
    []
    >>> real.advance(0.001); calls
    ['x']
    """

    def __init__(self, reactor, *, factor: float = 1.0, origin: float | None = None) -> None:
        if factor <= 0:
            raise ValueError("the warp factor must be positive")
        self.reactor = reactor
        self.factor = factor
        self._t0 = reactor.seconds()
        self.origin = self._t0 if origin is None else origin
        self.jumped = 0.0

    def seconds(self) -> float:
        return self.origin + (self.reactor.seconds() - self._t0) * self.factor + self.jumped

    def callLater(self, delay, callable, *args, **kw):
        return self.reactor.callLater(max(0.0, delay) / self.factor, callable, *args, **kw)

    def getDelayedCalls(self):
        return self.reactor.getDelayedCalls()

    def jump(self, seconds: float) -> None:
        """Move simulated time forward now (callers reschedule what they had waiting)."""
        self.jumped += max(0.0, seconds)


def epoch(when: dt.datetime) -> float:
    """Clock seconds for an aware datetime (``task.Clock().advance(epoch(...))`` sets a test clock)."""
    if when.tzinfo is None:
        raise ValueError("an aware datetime is needed (e.g. tzinfo=simulators.bank.CST)")
    return when.timestamp()
