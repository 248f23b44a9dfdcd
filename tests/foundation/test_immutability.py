"""Art. 15: nobody may modify submitted disbursement data — enforced by database triggers, so raw SQL fails too."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

NOW = dt.datetime(2026, 12, 1, 9, 0)


def _insert_batch_with_item(conn) -> None:
    conn.execute(sa.text(
        "INSERT INTO batches (id, ref, policy_code, period, county_code, department_code, submitted_by, submitted_at,"
        " source_name, content_sha256, item_count, total_fen) VALUES (1, 'B1', 'GDDL', '2026-11', '500236', 'FJ-NYNC',"
        " 'clerk', :now, 'roster.csv', :h, 1, 150000)"), {"now": NOW, "h": "ab" * 32})
    conn.execute(sa.text(
        "INSERT INTO items (id, batch_id, seq, end_to_end_id, unit_code, bank_id, amount_fen, name_enc, id_number_enc,"
        " account_enc, id_hash, account_hash) VALUES (1, 1, 1, 'E2E-1', '500236101', 'cqrcb-fj', 150000, :b, :b, :b,"
        " :h, :h)"), {"b": b"\x00", "h": "cd" * 32})
    conn.execute(sa.text("INSERT INTO item_events (item_id, state, at, source) VALUES (1, 'submitted', :now, 'intake')"),
                 {"now": NOW})


@pytest.mark.parametrize("statement", [
    "UPDATE items SET amount_fen = 999999 WHERE id = 1",
    "UPDATE items SET account_hash = 'x' WHERE id = 1",
    "DELETE FROM items WHERE id = 1",
    "UPDATE batches SET total_fen = 1 WHERE id = 1",
    "DELETE FROM batches",
    "UPDATE item_events SET state = 'settled'",
    "DELETE FROM item_events",
])
def test_raw_sql_cannot_change_submitted_data(engine, statement):
    with engine.begin() as conn:
        _insert_batch_with_item(conn)
    with pytest.raises(DBAPIError, match="immutable"):
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT amount_fen FROM items WHERE id = 1")).scalar_one() == 150000
        assert conn.execute(sa.text("SELECT count(*) FROM item_events")).scalar_one() == 1


def test_truncate_refused_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    with engine.begin() as conn:
        _insert_batch_with_item(conn)
    with pytest.raises(DBAPIError, match="immutable"):
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE items CASCADE"))


def test_upgrade_is_idempotent(db_url):
    from gateway.db import upgrade

    assert upgrade(db_url) == upgrade(db_url)


@pytest.mark.parametrize("window", [None, "'k2'"])
def test_the_rekey_window_does_not_let_a_ciphertext_move_between_rows(engine, window):
    """Art. 15 (bug: anyone with raw SQL could open the re-encryption window and copy one item's
    account ciphertext into another): a window must name the key rotated to, and a ciphertext that
    is not under that key (here one under k1, as a copy from another row would be) is refused."""
    with engine.begin() as conn:
        _insert_batch_with_item(conn)
    with pytest.raises(DBAPIError, match="immutable|to_key_id|NOT NULL|null value"):
        with engine.begin() as conn:
            if window is None:
                conn.execute(sa.text("INSERT INTO pii_rekey_window (opened_by) VALUES ('x')"))
            else:
                conn.execute(sa.text(f"INSERT INTO pii_rekey_window (opened_by, to_key_id) VALUES ('x', {window})"))
            conn.execute(sa.text("UPDATE items SET account_enc = :b WHERE id = 1"), {"b": b"\x02k1\0\0\0\0\0\0" + b"\0" * 28})
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT account_enc FROM items WHERE id = 1")).scalar_one() == b"\x00"
