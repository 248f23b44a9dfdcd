"""Headless Chromium (Debian's package) against the real site: log in, see a batch's proof, use the
self-service query. Screenshots are kept in ``tests/artefacts/`` (not committed).

Runs on SQLite only: the browser sees the same pages whichever database is behind them, and the
pages' data is covered on both databases by the HTTP tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cdp import Browser, chromium_binary  # noqa: E402
from webhelp import PASSWORD  # noqa: E402

ARTEFACTS = Path(__file__).resolve().parent.parent / "artefacts"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(params=["sqlite"])
def db_url(request, tmp_path):
    from gateway.db import upgrade

    url = f"sqlite:///{tmp_path / 'ykt.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def browser():
    binary = chromium_binary()
    if binary is None:
        if IN_CI:
            pytest.fail("chromium is required under CI=true (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    b = Browser(binary)
    yield b
    b.close()


def _fill(browser, field_id: str, value: str) -> None:
    browser.js(f"document.getElementById({field_id!r}).value = {value!r}")


def test_console_login_and_batches_page_show_the_proof(site, world, browser):
    base = f"http://127.0.0.1:{site.port}"
    browser.goto(base + "/console/batches")  # not signed in: sent to the login form
    assert browser.js("location.pathname") == "/console/login"
    browser.screenshot(ARTEFACTS / "console-login.png")
    _fill(browser, "username", "fin_fj")
    _fill(browser, "password", PASSWORD)
    browser.mark()
    browser.js("document.getElementById('login-submit').click()")
    browser.wait_for_new_page()
    assert browser.js("location.pathname") == "/console/batches"
    text = browser.js("document.body.innerText")
    assert "fin_fj" in text and "耕地地力保护补贴" in text
    assert "城乡" not in text and "TK-" not in text  # the other county's batch is not there
    assert "built-in method" not in text and "Undefined" not in text
    proof = browser.js("""(() => { const p = document.querySelector('.proof');
        return {balances: p.dataset.balances, terms: [...p.querySelectorAll('.term b')].map(b => b.innerText)}; })()""")
    assert proof == {"balances": "yes", "terms": ["6", "3", "1", "0", "2"]}  # 6 = 3 + 1 + 0 + 2
    assert browser.js("getComputedStyle(document.querySelector('header.top')).backgroundColor") == "rgb(183, 28, 28)"
    shot = browser.screenshot(ARTEFACTS / "console-batches.png")
    assert shot.stat().st_size > 10_000

    browser.goto(base + f"/console/batches/{world.batch_a}")
    assert "✓ 平衡 balances" in browser.js("document.body.innerText")
    browser.screenshot(ARTEFACTS / "console-batch.png")
    browser.goto(base + "/console/compliance")
    assert browser.js("document.querySelectorAll('svg.chart rect').length") > 2
    browser.screenshot(ARTEFACTS / "console-compliance.png")
    browser.mark()
    browser.js("document.querySelector('form.who button').click()")  # sign out (CSRF token in the form)
    browser.wait_for_new_page()
    assert browser.js("location.pathname") == "/console/login"


def test_query_page_shows_own_payments_masked(site, world, browser):
    item = min(i for i, rec in world.items_a.items() if rec[0] == "500236101")
    _unit, name, id_number, account = world.items_a[item]
    base = f"http://127.0.0.1:{site.port}"
    browser.goto(base + "/public/query")
    _fill(browser, "q-name", name)
    _fill(browser, "q-id", id_number)
    browser.mark()
    browser.js("document.getElementById('q-submit').click()")
    browser.wait_for_new_page()
    assert browser.js("document.getElementById('query-result') !== null")
    text = browser.js("document.body.innerText")
    assert "耕地地力保护补贴" in text and "1500.00" in text
    assert id_number not in text and account not in text and name not in text
    browser.screenshot(ARTEFACTS / "public-query-result.png")

    browser.goto(base + "/public/query")
    _fill(browser, "q-name", name)
    _fill(browser, "q-id", "110101199001011237")
    browser.mark()
    browser.js("document.getElementById('q-submit').click()")
    browser.wait_for_new_page()
    assert browser.js("document.getElementById('query-none') !== null")
    browser.screenshot(ARTEFACTS / "public-query-none.png")
