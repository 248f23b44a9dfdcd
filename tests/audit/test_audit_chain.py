"""The audit trail is hash-chained and keyed: any edited, deleted or reordered entry is found and
named, by `ykt audit verify` as well [Art. 30-35; Art. 34: nobody may change system data unapproved]."""

import datetime as dt
import io
import threading

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway import audit
from gateway.audit import AuditDataError, AuditKeys, entry_hash
from gateway.cli.main import cli

from audit_helpers import T0, as_db_admin, audit_keys, fill  # noqa: F401 - audit_keys is a fixture


def verify(engine, keys):
    with Session(engine) as s:
        return audit.verify(s, keys)


def run_verify(db_url, *extra):
    return CliRunner().invoke(cli, ["--db", db_url, "audit", "verify", *extra])


def test_intact_chain_verifies(engine, audit_keys, db_url):
    fill(engine, audit_keys, 5)
    assert verify(engine, audit_keys) == []
    with Session(engine) as s:
        rows = list(audit.entries(s))
        assert [e.seq for e in rows] == [1, 2, 3, 4, 5]
        assert rows[0].prev_hash == audit.GENESIS and rows[1].prev_hash == rows[0].hash
        assert audit.head(s) == (5, rows[-1].hash)
        assert rows[3].detail_dict == {"code": "amount_over_standard", "note": "复核无误"}
    r = run_verify(db_url)
    assert r.exit_code == 0, r.output
    assert "intact: 5 entries" in r.output


def test_edited_entry_is_named(engine, audit_keys, db_url):
    fill(engine, audit_keys, 5)
    as_db_admin(engine, """UPDATE audit_log SET detail = '{"code":"amount_over_standard","note":"ok"}' WHERE seq = 4""")
    breaks = verify(engine, audit_keys)
    assert [(b.seq, b.kind) for b in breaks] == [(4, "edited")]
    r = run_verify(db_url)
    assert r.exit_code == 1
    assert "audit entry 4: edited" in r.output and "finding.cleared finding:42" in r.output


def test_edited_actor_or_time_is_found(engine, audit_keys):
    fill(engine, audit_keys, 3)
    as_db_admin(engine, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1",
                "UPDATE audit_log SET at = '2026-11-03 00:00:00' WHERE seq = 2")
    assert [(b.seq, b.kind) for b in verify(engine, audit_keys)] == [(1, "edited"), (2, "edited")]


def test_deleted_entry_is_named(engine, audit_keys, db_url):
    fill(engine, audit_keys, 5)
    as_db_admin(engine, "DELETE FROM audit_log WHERE seq = 3")
    breaks = verify(engine, audit_keys)
    assert [(b.seq, b.kind) for b in breaks] == [(4, "missing")]
    assert "entries 3..3 are missing" in breaks[0].message
    r = run_verify(db_url)
    assert r.exit_code == 1 and "audit entry 4: missing" in r.output


def test_deleted_last_entry_is_found_by_the_head(engine, audit_keys, db_url):
    fill(engine, audit_keys, 5)
    as_db_admin(engine, "DELETE FROM audit_log WHERE seq = 5")
    assert [(b.seq, b.kind) for b in verify(engine, audit_keys)] == [(5, "head")]
    assert run_verify(db_url).exit_code == 1


def test_reordered_entries_are_named(engine, audit_keys, db_url):
    """Two rows swap places: each keeps its seq, but its content (and chain link) is the other's."""
    fill(engine, audit_keys, 5)
    with engine.connect() as c:
        r2, r3 = (dict(c.execute(sa.text("SELECT * FROM audit_log WHERE seq = :s"), {"s": s}).mappings().one())
                  for s in (2, 3))
    sets = lambda r: ", ".join(f"{k} = :{k}" for k in r if k != "seq")  # noqa: E731
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        else:
            c.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        c.execute(sa.text(f"UPDATE audit_log SET {sets(r3)} WHERE seq = 2"), {k: v for k, v in r3.items() if k != "seq"})
        c.execute(sa.text(f"UPDATE audit_log SET {sets(r2)} WHERE seq = 3"), {k: v for k, v in r2.items() if k != "seq"})
    found = {(b.seq, b.kind) for b in verify(engine, audit_keys)}
    assert {(2, "reordered"), (2, "edited"), (3, "reordered"), (3, "edited")} <= found
    assert {s for s, _ in found} == {2, 3, 4}  # entry 4 no longer follows entry 3's (new) hash
    r = run_verify(db_url)
    assert r.exit_code == 1 and "audit entry 2: reordered" in r.output


def test_renumbered_entries_are_found(engine, audit_keys):
    """Reordering by renumbering seq (move entry 2 to the end)."""
    fill(engine, audit_keys, 4)
    as_db_admin(engine, "UPDATE audit_log SET seq = 9 WHERE seq = 2")
    kinds = [(b.seq, b.kind) for b in verify(engine, audit_keys)]
    assert (3, "missing") in kinds and (9, "edited") in kinds


def test_a_rewritten_chain_without_the_key_is_found(engine, audit_keys):
    """A DB admin edits entry 2 and recomputes every hash after it with plain SHA-256 (no key)."""
    fill(engine, audit_keys, 4)
    with Session(engine) as s:
        rows = list(audit.entries(s))
    stmts, prev = [], rows[0].hash
    for e in rows[1:]:
        actor = "forged" if e.seq == 2 else e.actor
        h = entry_hash(e.seq, e.at, actor, e.action, e.subject, e.detail, "", prev, None)
        stmts.append(f"UPDATE audit_log SET actor = '{actor}', key_id = '', prev_hash = '{prev}', hash = '{h}' "
                     f"WHERE seq = {e.seq}")
        prev = h
    stmts.append(f"UPDATE audit_head SET hash = '{prev}' WHERE id = 1")
    as_db_admin(engine, *stmts)
    assert [(b.seq, b.kind) for b in verify(engine, audit_keys)] == [(2, "unkeyed"), (3, "unkeyed"), (4, "unkeyed")]
    # and with a wrong key nothing checks out
    other = AuditKeys.from_text(AuditKeys.new_key_line("a1"))
    fill(engine, audit_keys, 1)
    assert (5, "edited") in {(b.seq, b.kind) for b in verify(engine, other)}


def test_database_refuses_update_and_delete(engine, audit_keys):
    fill(engine, audit_keys, 2)
    for st in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2",
               "UPDATE audit_head SET seq = 1 WHERE id = 1", "DELETE FROM audit_head"):
        with pytest.raises(DBAPIError, match="append-only|only moves forward|cannot be deleted"):
            with engine.begin() as c:
                c.execute(sa.text(st))
    assert verify(engine, audit_keys) == []


def test_personal_data_is_refused_in_detail(engine, audit_keys):
    with Session(engine) as s:
        for detail in ({"id": "50023619650312101X"}, {"note": "账号6217000100000000017已变更"},
                       {"nested": [{"x": "500236196503121019"}]}):
            with pytest.raises(AuditDataError):
                audit.append(s, actor="clerk", action="account.changed", subject="account:1", detail=detail, now=T0,
                             keys=audit_keys)
        with pytest.raises(AuditDataError):
            audit.append(s, actor="clerk", action="Bad Action", subject="x", detail={}, now=T0, keys=audit_keys)
        s.rollback()
    assert verify(engine, audit_keys) == []


def test_rolled_back_append_leaves_no_trace(engine, audit_keys):
    fill(engine, audit_keys, 2)
    with Session(engine) as s:
        audit.append(s, actor="clerk", action="batch.submitted", subject="batch:x", detail={}, now=T0, keys=audit_keys)
        s.rollback()
    fill(engine, audit_keys, 1)
    assert verify(engine, audit_keys) == []
    with Session(engine) as s:
        assert audit.head(s)[0] == 3


def test_concurrent_writers_do_not_fork_the_chain(engine, audit_keys):
    """Two processes' worth of writers append at once; the head lock serialises them."""
    errors = []

    def writer(who):
        try:
            for i in range(25):
                with Session(engine) as s, s.begin():
                    s.execute(sa.text("SELECT count(*) FROM batches"))  # work done before the append
                    audit.append(s, actor=who, action="file.received", subject=f"inbound:{i}", detail={"n": i},
                                 now=T0 + dt.timedelta(seconds=i), keys=audit_keys)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(f"w{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert verify(engine, audit_keys) == []
    with Session(engine) as s:
        assert [e.seq for e in audit.entries(s)] == list(range(1, 76))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_carries_the_chain_and_tampering_with_it_is_found(engine, audit_keys, db_url, tmp_path, fmt):
    fill(engine, audit_keys, 5)
    out = tmp_path / f"audit.{fmt}"
    r = CliRunner().invoke(cli, ["--db", db_url, "audit", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with out.open(encoding="utf-8", newline="") as f:
        back = list(audit.read_export(f, fmt))
    assert [e.seq for e in back] == [1, 2, 3, 4, 5] and audit.verify_entries(back, audit_keys) == []
    assert run_verify(db_url, "--file", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    out.write_text(text.replace("复核无误", "复核有误"), encoding="utf-8")
    r = run_verify(db_url, "--file", str(out))
    assert r.exit_code == 1 and "audit entry 4: edited" in r.output


def test_expected_head_detects_a_rebuilt_tail(engine, audit_keys, db_url):
    fill(engine, audit_keys, 3)
    with Session(engine) as s:
        seq, h = audit.head(s)
    assert run_verify(db_url, "--expect-head", f"{seq}:{h}").exit_code == 0
    as_db_admin(engine, "DELETE FROM audit_log WHERE seq = 3")
    r = run_verify(db_url, "--expect-head", f"{seq}:{h}")
    assert r.exit_code == 1 and "audit entry 3: head" in r.output


def test_unkeyed_trail_still_chains(engine, monkeypatch):
    """Without an audit key the chain is plain SHA-256: it still finds edits, and says so."""
    monkeypatch.delenv(audit.KEY_ENV, raising=False)
    fill(engine, None, 3)
    assert verify(engine, None) == []
    as_db_admin(engine, "UPDATE audit_log SET subject = 'batch:other' WHERE seq = 1")
    assert [(b.seq, b.kind) for b in verify(engine, None)] == [(1, "edited")]


def test_export_to_stream(engine, audit_keys):
    fill(engine, audit_keys, 2)
    buf = io.StringIO()
    with Session(engine) as s:
        assert audit.export(s, buf, "jsonl") == 2
    assert buf.getvalue().count("\n") == 2


def test_digests_and_message_ids_are_not_mistaken_for_personal_data():
    """A SHA-256 digest or a MsgId can hold 16+ digits in a row; they are recorded, an account number is not."""
    from gateway.audit import AuditDataError, _check_detail

    _check_detail({"sha256": "1234567890123456789abcdef0123456789abcdef0123456789abcdef0123456",
                   "msg_id": "YKT202611020000000001"})
    with pytest.raises(AuditDataError):
        _check_detail({"note": "paid to 6217000012345678901"})
