"""Rotating the personal-data key [Art. 30, 33, 35]: a new current key, every ciphertext moved to it
through the one door migration 0004 opens in the immutability triggers (Art. 15) — and nothing else
gets through that door."""

import os
import stat

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway import audit
from gateway.cli.main import cli
from gateway.privacy import (KEY_ENV, ROW_KEYS, PiiKeyError, PiiVault, encrypted_columns, reencrypt,
                             remaining_under_old_keys)
from pii_roster import key_line, load_roster, vault  # noqa: F401 - fixtures


def _plaintexts(engine, vault):
    out = {}
    with engine.connect() as c:
        for table, cols in encrypted_columns(c).items():
            key = ROW_KEYS[table]
            for row in c.execute(sa.text(f"SELECT id, {key}, {', '.join(cols)} FROM {table} ORDER BY id")):
                out[(table, row[0])] = tuple(None if b is None else vault.decrypt(bytes(b), table, col, row[1])
                                             for col, b in zip(cols, row[2:]))
    return out


def test_rotation_reencrypts_every_column_and_keeps_lookups(engine, vault, key_line):
    loaded = load_roster(engine, vault)
    before = _plaintexts(engine, vault)
    with engine.connect() as c:
        hashes_before = c.execute(sa.text("SELECT id, id_hash, account_hash, amount_fen FROM items ORDER BY id")).all()
    assert set(encrypted_columns(engine)) >= {"items", "beneficiaries", "accounts"}
    new = PiiVault.from_text(key_line + "\n" + PiiVault.new_key_line("k2"))
    assert remaining_under_old_keys(engine, new)["items"] == 3 * len(loaded.body)
    stats = reencrypt(engine, new, batch_size=7)
    assert stats.values_reencrypted == sum(1 for v in before.values() for x in v if x is not None)
    assert set(remaining_under_old_keys(engine, new).values()) == {0}
    assert _plaintexts(engine, new) == before
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT id, id_hash, account_hash, amount_fen FROM items ORDER BY id")).all() \
            == hashes_before
        assert new.blind_index("id", loaded.body[0][1]) == hashes_before[0][1]
    # the old key alone can no longer read the data; a second run has nothing to do
    with engine.connect() as c:
        e2e, blob = c.execute(sa.text("SELECT end_to_end_id, name_enc FROM items ORDER BY id LIMIT 1")).one()
    with pytest.raises(PiiKeyError, match="not loaded"):
        vault.decrypt(bytes(blob), "items", "name_enc", e2e)
    assert reencrypt(engine, new).values_reencrypted == 0


def _open_window(c, to_key_id="k2"):
    c.execute(sa.text("INSERT INTO pii_rekey_window (opened_by, to_key_id) VALUES ('test', :k)"), {"k": to_key_id})


def test_the_window_lets_only_ciphertext_change(engine, vault):
    load_roster(engine, vault, n=3, registered=1)
    for st in ("UPDATE items SET amount_fen = 1", "UPDATE items SET account_hash = 'x', account_enc = account_enc",
               "UPDATE items SET unit_code = '500236102'", "DELETE FROM items WHERE id = 1",
               "UPDATE accounts SET bank_id = 'icbc-cq'", "UPDATE beneficiaries SET name_hash = 'x'"):
        with pytest.raises(DBAPIError, match="immutable"):
            with engine.begin() as c:
                _open_window(c)
                c.execute(sa.text(st))
    # and without the window even a ciphertext stays as it is
    with pytest.raises(DBAPIError, match="immutable"):
        with engine.begin() as c:
            c.execute(sa.text("UPDATE items SET name_enc = account_enc"))


def _two_accounts(c):
    return c.execute(sa.text("SELECT id, end_to_end_id, account_enc FROM items ORDER BY id LIMIT 2")).all()


def test_window_swap_under_one_key_is_refused_by_the_database(engine, vault):
    """Art. 15 (bug found by an audit: anyone with SQL opened the window and copied one item's account
    ciphertext into another): the window must name the key rotated to, and a ciphertext may only
    change from another key to that one, so a swap between rows under the same key is refused."""
    load_roster(engine, vault, n=4, registered=0)
    with engine.connect() as c:
        a, b = _two_accounts(c)
    for to_key in ("k2", "k1"):  # a key not in the ciphertext, and the key it already has
        with pytest.raises(DBAPIError, match="immutable"):
            with engine.begin() as c:
                _open_window(c, to_key)
                c.execute(sa.text("UPDATE items SET account_enc = :e WHERE id = :i"), {"e": b[2], "i": a[0]})
    with pytest.raises(DBAPIError):  # a window that names no key cannot be opened at all
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO pii_rekey_window (opened_by) VALUES ('test')"))
    with engine.connect() as c:
        assert _two_accounts(c) == [a, b]


def test_ciphertext_moved_during_a_rotation_passes_the_door_but_does_not_decrypt(engine, vault, key_line):
    """Art. 15, Art. 30: during a real rotation the database cannot tell a copied ciphertext under the
    new key from a re-encrypted one; the cell binding can. Rotation still finishes for the rest."""
    load_roster(engine, vault, n=4, registered=0)
    new = PiiVault.from_text(key_line + "\n" + PiiVault.new_key_line("k2"))
    with engine.begin() as c:
        a, b = _two_accounts(c)
        copied = new.encrypt(vault.decrypt(bytes(b[2]), "items", "account_enc", b[1]), "items", "account_enc", b[1])
        _open_window(c, "k2")
        c.execute(sa.text("UPDATE items SET account_enc = :e WHERE id = :i"), {"e": copied, "i": a[0]})
        c.execute(sa.text("DELETE FROM pii_rekey_window"))
    with pytest.raises(PiiKeyError, match=f"items.account_enc of end_to_end_id {a[1]}: .*failed authentication"):
        new.decrypt(copied, "items", "account_enc", a[1])
    reencrypt(engine, new)
    assert set(remaining_under_old_keys(engine, new).values()) == {0}


@pytest.mark.parametrize("where", [
    ("items", "account_enc", "000000000200000001"),  # another row
    ("items", "id_number_enc", "000000000100000001"),  # another column
    ("accounts", "account_enc", "000000000100000001"),  # another table
])
def test_a_ciphertext_opens_only_in_its_own_cell(vault, where):
    """Art. 30: the table, column and row key are AES-GCM associated data; elsewhere the ciphertext
    fails authentication, and the error names the cell it was read from."""
    blob = vault.encrypt("6217000123456789012", "items", "account_enc", "000000000100000001")
    assert vault.decrypt(blob, "items", "account_enc", "000000000100000001") == "6217000123456789012"
    with pytest.raises(PiiKeyError, match=rf"{where[0]}\.{where[1]} of \w+ {where[2]}: .*failed authentication"):
        vault.decrypt(blob, *where)


def test_window_lets_no_other_cipher_column_be_filled(engine, vault):
    """Art. 15: an empty ciphertext column (no proxy) stays empty even inside the window."""
    load_roster(engine, vault, n=2, registered=0)
    with pytest.raises(DBAPIError, match="immutable"):
        with engine.begin() as c:
            _open_window(c, "k2")
            c.execute(sa.text("UPDATE items SET proxy_name_enc = :e"),
                      {"e": PiiVault.from_text(PiiVault.new_key_line("k2")).encrypt("x", "items", "proxy_name_enc", "1")})


def test_cli_init_and_rotate(engine, vault, db_url, tmp_path, monkeypatch, config_dir):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(audit.KEY_ENV, audit.AuditKeys.new_key_line("a1"))
    key_file = tmp_path / "keys" / "pii.keys"
    run = lambda *a: CliRunner().invoke(cli, ["--db", db_url, "--config", str(config_dir), *a])  # noqa: E731
    r = run("pii-keys", "init", "--file", str(key_file))
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert run("pii-keys", "init", "--file", str(key_file)).exit_code == 1  # never overwritten
    first = PiiVault.from_text(key_file.read_text())
    loaded = load_roster(engine, first, n=5, registered=2)
    r = run("--json", "pii-keys", "rotate", "--file", str(key_file), "--batch-size", "2", "--actor", "ops:wang")
    assert r.exit_code == 0, r.output
    rotated = PiiVault.from_text(key_file.read_text())
    assert rotated.current_key_id != first.current_key_id and first.current_key_id in rotated.key_ids
    assert set(remaining_under_old_keys(engine, rotated).values()) == {0}
    with Session(engine) as s:
        assert {e.action for e in audit.entries(s) if e.action.startswith("pii.")} == {"pii.key_added", "pii.reencrypted"}
        assert audit.verify(s) == []
        e2e, name = s.execute(sa.text("SELECT end_to_end_id, name_enc FROM items ORDER BY id LIMIT 1")).one()
    assert rotated.decrypt(bytes(name), "items", "name_enc", e2e) == loaded.body[0][0]
