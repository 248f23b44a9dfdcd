"""External tools the tests call as independent checks (xmlsec1, openssl, sshd, curl, pg_dump …).

A missing tool skips the test on a developer's machine and FAILS it under ``CI=true``, like the
PostgreSQL and chromium fixtures: CI must never go green because a check silently did not run.
The Debian packages that provide them are listed in the Makefile's ``SYSTEM_TOOLS``.

* :func:`require_tool` — call inside a test or fixture; returns the tool's path.
* :func:`needs_tool` — the same as a decorator, for tests that run a tool themselves.
* :func:`require_pg_dump` — a ``pg_dump`` able to dump the given server version.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """Fail under ``CI=true``, skip otherwise; ``what`` says what is missing and how to get it."""
    if IN_CI:
        pytest.fail(f"{what} (required under CI=true; see SYSTEM_TOOLS in the Makefile)", pytrace=False)
    pytest.skip(what)


def require_tool(name: str) -> str:
    """The path of executable ``name`` (a name on ``PATH`` or an absolute path).

    Skips the calling test when it is absent, or fails it under ``CI=true``.
    """
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed")
    return found


def needs_tool(*names: str):
    """Decorator: the test calls :func:`require_tool` for each of ``names`` before it runs.

    Put it above ``@pytest.mark.parametrize`` (marks and fixture arguments are kept).
    """

    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            for name in names:
                require_tool(name)
            return test(*args, **kwargs)

        return run

    return decorate


def _major_version(pg_dump: str) -> int | None:
    try:
        out = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    m = re.search(r"\)\s+(\d+)", out) or re.search(r"(\d+)\.\d+", out)
    return int(m.group(1)) if m else None


def require_pg_dump(server_major: int) -> str:
    """A ``pg_dump`` whose major version is at least the server's (an older one refuses to dump).

    Looks at ``pg_dump`` on ``PATH`` and then at Debian's ``/usr/lib/postgresql/N/bin/pg_dump``.
    Skips, or fails under ``CI=true``, naming the Debian package that would do.
    """
    candidates = [shutil.which("pg_dump")] + sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))
    found = []
    for path in filter(None, candidates):
        major = _major_version(path)
        if major is not None and major >= server_major:
            return path
        found.append(f"{path} ({major or 'unusable'})")
    missing(f"no pg_dump for PostgreSQL {server_major} (found: {', '.join(found) or 'none'}); "
            f"install postgresql-client-{server_major}")
