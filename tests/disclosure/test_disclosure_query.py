"""Self-service query 自助查询 [Art. 25 自助查询渠道, Art. 28 群众可以随时查阅; Art. 30 privacy]: a person
gives name and ID number and sees only their own payments, masked; an unknown ID and a wrong name
look the same; rate limits stop anybody from testing names or IDs in bulk."""

import datetime as dt
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from gateway.admin.disclosure import QueryLimits, QueryRateLimited, QueryRefused, SelfServiceQuery
from gateway.cli.main import cli
from gateway.privacy import KEY_ENV

from disclosure_paid import key_line, paid, pii_vault, signing_keys  # noqa: F401 - fixtures
from tests.support.rosters import resident_id


class Clock:
    def __init__(self):
        self.now = dt.datetime(2026, 12, 1, 2, 0)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(paid, clock):
    return SelfServiceQuery(paid.cfg, paid.vault, clock=clock, limits=QueryLimits(per_client=5, per_client_seconds=60,
                                                                                  per_id=8, per_id_seconds=3600))


def ask(engine, service, name, idn, client="203.0.113.7"):
    with Session(engine) as s:
        return service.ask(s, name=name, id_number=idn, client_key=client)


def test_a_person_sees_their_own_payment_only(engine, paid, service):
    name, idn, account = paid.body[0][:3]
    (line,) = ask(engine, service, name, idn)
    assert (line.policy_code, line.policy_name, line.period, line.amount, line.state, line.state_zh) == \
        ("GDDL", "耕地地力保护补贴", "2026-11", Decimal("1500.00"), "settled", "已发放")
    assert (line.name, line.id_number, line.account) == ("张*", idn[:6] + "********" + idn[-4:], "*" * 15 + account[-4:])
    assert line.date == dt.date(2026, 11, 3) and line.hotline == "023-56551234"
    assert line.unit_name == "奉节县永乐镇人民政府"
    others = [v for r in paid.body[1:] for v in r[:3]]
    assert not any(v in repr(line) for v in others + [name, idn, account])


def test_failed_and_outstanding_payments_are_shown_to_their_owner(engine, paid, service):
    (rej,) = ask(engine, service, *paid.body[4][:2])
    (out,) = ask(engine, service, *paid.body[5][:2])
    assert rej.state == "rejected_by_bank" and "失败" in rej.state_zh
    assert out.state == "sent" and out.state_zh == "发放中"


def test_wrong_name_and_unknown_id_look_the_same(engine, paid, service):
    name, idn = paid.body[0][:2]
    assert ask(engine, service, paid.body[1][0], idn) == []  # someone else's name with this ID
    assert ask(engine, service, name, resident_id(seq=990)) == []  # a valid ID with no payments
    assert ask(engine, service, "张 伟", idn) != []  # a blank typed inside the name does not matter
    assert ask(engine, service, name, idn.lower()) != []


@pytest.mark.parametrize("name, idn", [("张伟", "500236195003121"), ("张伟", "500236195003121000"), ("", "x"),
                                       ("张伟", "")])
def test_malformed_input_is_refused(engine, paid, service, name, idn):
    with pytest.raises(QueryRefused):
        ask(engine, service, name, idn)


def test_rate_limit_per_client(engine, paid, service, clock):
    name, idn = paid.body[0][:2]
    for _ in range(5):
        assert len(ask(engine, service, name, idn)) == 1
        clock.advance(5)
    with pytest.raises(QueryRateLimited) as e:
        ask(engine, service, name, idn)
    assert e.value.retry_after == dt.timedelta(seconds=35)
    assert len(ask(engine, service, name, idn, client="198.51.100.9")) == 1  # another client is not blocked
    clock.advance(35)
    assert len(ask(engine, service, name, idn)) == 1  # the oldest query left the window


def test_rate_limit_per_id_across_clients_stops_name_guessing(engine, paid, service, clock):
    """Guessing the name that goes with one ID from many addresses is stopped by the per-ID limit."""
    idn = paid.body[0][1]
    for i, guess in enumerate(["王伟", "李伟", "刘伟", "陈伟", "杨伟", "赵伟", "黄伟", "周伟"]):
        assert ask(engine, service, guess, idn, client=f"10.0.0.{i}") == []
    with pytest.raises(QueryRateLimited):
        ask(engine, service, paid.body[0][0], idn, client="10.0.0.99")
    clock.advance(3600)
    assert len(ask(engine, service, paid.body[0][0], idn, client="10.0.0.99")) == 1


def test_refused_queries_count_against_the_client(engine, paid, service):
    for _ in range(5):
        with pytest.raises(QueryRefused):
            ask(engine, service, "张伟", "not-an-id")
    with pytest.raises(QueryRateLimited):
        ask(engine, service, *paid.body[0][:2])


def test_cli_query(engine, paid, db_url, monkeypatch, key_line, config_dir):
    monkeypatch.setenv(KEY_ENV, key_line)
    name, idn, account = paid.body[2][:3]
    r = CliRunner().invoke(cli, ["--db", db_url, "--config", str(config_dir), "disclose", "query", "--name", name,
                                 "--id", idn])
    assert r.exit_code == 0, r.output
    assert "耕地地力保护补贴" in r.output and "1,500.00 元" in r.output and "已发放" in r.output
    assert name not in r.output and idn not in r.output and account not in r.output
    r = CliRunner().invoke(cli, ["--db", db_url, "--config", str(config_dir), "disclose", "query", "--name", "某某",
                                 "--id", idn])
    assert r.exit_code == 0 and "没有查询到记录" in r.output
