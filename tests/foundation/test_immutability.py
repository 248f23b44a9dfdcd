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


def _outbound_file(conn) -> None:
    conn.execute(sa.text(
        "INSERT INTO outbound_files (id, bank_id, batch_id, msg_id, name, item_count, total_fen, created_at,"
        " requested_execution_date, state, attempts) VALUES (1, 'cqrcb-fj', 1, 'M1', 'F1', 1, 150000, :now,"
        " :day, 'planned', 0)"), {"now": NOW, "day": NOW.date()})


@pytest.mark.parametrize("table, columns, good, bad", [
    ("item_events", ("item_id", "state", "at", "source"), (1, "validated", NOW, "v"), (2, "submitted", NOW, "x")),
    ("item_bank_dates", ("item_id", "state", "bank_date", "recorded_at"), (1, "settled", NOW.date(), NOW),
     (2, "settled", NOW.date(), NOW)),
    ("outbound_file_items", ("file_id", "seq_in_file", "item_id"), (1, 1, 1), (1, 2, 2)),
])
@pytest.mark.parametrize("how", ["sql", "bulk"])
def test_a_reference_to_an_item_that_does_not_exist_is_refused(engine, table, columns, good, bad, how):
    """Every event, bank date and file link names an item that exists (on PostgreSQL checked once per
    statement since migration 0012, on SQLite by the foreign key): a statement with one bad row among
    good ones is refused whole, with the same IntegrityError."""
    with engine.begin() as conn:
        _insert_batch_with_item(conn)
        if table == "outbound_file_items":
            conn.execute(sa.text("INSERT INTO item_events (item_id, state, at, source) VALUES (1, 'validated', :n, 'v')"),
                         {"n": NOW})
            _outbound_file(conn)
    _refused_whole_then_good_taken(engine, table, columns, good, bad, how)


def _refused_whole_then_good_taken(engine, table, columns, good, bad, how) -> None:
    """A statement (plain SQL, or COPY on PostgreSQL) of ``good`` and ``bad`` is refused with an
    IntegrityError and writes nothing; ``good`` alone is then taken."""
    from sqlalchemy.exc import IntegrityError

    from gateway.db.engine import insert_rows

    before = _count(engine, table)
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            if how == "bulk":  # COPY on PostgreSQL
                insert_rows(conn, sa.Table(table, sa.MetaData(), autoload_with=conn), columns, [good, bad])
            else:
                marks = ", ".join(f":{c}" for c in columns)
                conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"),
                             [dict(zip(columns, good)), dict(zip(columns, bad))])
    assert _count(engine, table) == before
    with engine.begin() as conn:  # the good row alone is taken
        insert_rows(conn, sa.Table(table, sa.MetaData(), autoload_with=conn), columns, [good])
    assert _count(engine, table) == before + 1


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def _two_validated_items_and_a_file_each_way(conn) -> None:
    _insert_batch_with_item(conn)
    conn.execute(sa.text(
        "INSERT INTO items (id, batch_id, seq, end_to_end_id, unit_code, bank_id, amount_fen, name_enc, id_number_enc,"
        " account_enc, id_hash, account_hash) VALUES (2, 1, 2, 'E2E-2', '500236101', 'cqrcb-fj', 150000, :b, :b, :b,"
        " :h, :h)"), {"b": b"\x00", "h": "ef" * 32})
    conn.execute(sa.text("INSERT INTO item_events (item_id, state, at, source) VALUES (2, 'submitted', :n, 'intake'),"
                         " (1, 'validated', :n, 'v'), (2, 'validated', :n, 'v')"), {"n": NOW})
    _outbound_file(conn)
    conn.execute(sa.text("INSERT INTO inbound_files (id, bank_id, name, sha256, path, received_at, status) VALUES"
                         " (1, 'cqrcb-fj', 'pain002.xml', :h, 'in/pain002.xml', :n, 'stored')"),
                 {"h": "12" * 32, "n": NOW})


ITEM = ("id", "batch_id", "seq", "end_to_end_id", "unit_code", "bank_id", "amount_fen", "name_enc", "id_number_enc",
        "account_enc", "id_hash", "account_hash")


@pytest.mark.parametrize("table, columns, good, bad", [
    ("items", ITEM, (3, 1, 3, "E2E-3", "u", "b", 1, b"\0", b"\0", b"\0", "a" * 64, "b" * 64),
     (4, 9, 4, "E2E-4", "u", "b", 1, b"\0", b"\0", b"\0", "c" * 64, "d" * 64)),
    ("outbound_file_items", ("file_id", "seq_in_file", "item_id"), (1, 1, 1), (9, 1, 2)),
    ("item_events", ("item_id", "state", "at", "source", "outbound_file_id"), (1, "sent", NOW, "d", 1),
     (2, "sent", NOW, "d", 9)),
    ("item_events", ("item_id", "state", "at", "source", "inbound_file_id"), (1, "sent", NOW, "i", 1),
     (2, "sent", NOW, "i", 9)),
    ("item_bank_dates", ("item_id", "state", "bank_date", "recorded_at", "inbound_file_id"),
     (1, "settled", NOW.date(), NOW, 1), (2, "settled", NOW.date(), NOW, 9)),
], ids=["items.batch_id", "outbound_file_items.file_id", "item_events.outbound_file_id",
        "item_events.inbound_file_id", "item_bank_dates.inbound_file_id"])
@pytest.mark.parametrize("how", ["sql", "bulk"])
def test_a_reference_to_a_batch_or_bank_file_that_does_not_exist_is_refused(engine, table, columns, good, bad, how):
    """Every item names its batch and every file link, event and bank date names the bank file it came
    with or went in (on PostgreSQL checked once per statement since migration 0013, on SQLite by the
    foreign key): one row naming batch or file 9, which does not exist, refuses its statement whole."""
    with engine.begin() as conn:
        _two_validated_items_and_a_file_each_way(conn)
    _refused_whole_then_good_taken(engine, table, columns, good, bad, how)


def test_a_file_link_moved_to_a_file_that_does_not_exist_is_refused(engine):
    """File links may be updated (PostgreSQL checks them after an UPDATE as after an INSERT)."""
    from sqlalchemy.exc import IntegrityError

    with engine.begin() as conn:
        _two_validated_items_and_a_file_each_way(conn)
        conn.execute(sa.text("INSERT INTO outbound_file_items (file_id, seq_in_file, item_id) VALUES (1, 1, 1)"))
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE outbound_file_items SET file_id = 9"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT file_id FROM outbound_file_items")).scalar_one() == 1


@pytest.mark.parametrize("table", ["outbound_files", "inbound_files"])
@pytest.mark.parametrize("statement", ["DELETE FROM {t}", "UPDATE {t} SET id = 2", "TRUNCATE {t} CASCADE"])
def test_bank_files_are_kept_and_keep_their_ids(engine, table, statement):
    """Art. 18-20: the files sent to a bank and received from it are the record of the payment; their rows
    may change state but are never deleted or renumbered (which is also what lets PostgreSQL check the
    references to them once per statement, migration 0013)."""
    if statement.startswith("TRUNCATE") and engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    with engine.begin() as conn:
        _two_validated_items_and_a_file_each_way(conn)
    with pytest.raises(DBAPIError, match="record of what was sent and received"):
        with engine.begin() as conn:
            conn.execute(sa.text(statement.format(t=table)))
    with engine.begin() as conn:  # a change of state is not refused
        conn.execute(sa.text(f"UPDATE {table} SET {'state' if table == 'outbound_files' else 'status'} = 'x', id = 1"))
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 1
