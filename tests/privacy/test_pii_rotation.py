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
from gateway.privacy import (KEY_ENV, PiiKeyError, PiiVault, encrypted_columns, reencrypt,
                             remaining_under_old_keys)
from pii_roster import key_line, load_roster, vault  # noqa: F401 - fixtures


def _plaintexts(engine, vault):
    out = {}
    with engine.connect() as c:
        for table, cols in encrypted_columns(c).items():
            for row in c.execute(sa.text(f"SELECT id, {', '.join(cols)} FROM {table} ORDER BY id")):
                out[(table, row[0])] = tuple(None if b is None else vault.decrypt(bytes(b)) for b in row[1:])
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
        blob = c.execute(sa.text("SELECT name_enc FROM items ORDER BY id LIMIT 1")).scalar_one()
    with pytest.raises(PiiKeyError, match="not loaded"):
        vault.decrypt(bytes(blob))
    assert reencrypt(engine, new).values_reencrypted == 0


def _open_window(c):
    c.execute(sa.text("INSERT INTO pii_rekey_window (opened_by) VALUES ('test')"))


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


def test_swapped_ciphertexts_are_refused_not_laundered(engine, vault, key_line):
    """Someone uses the window to swap two people's account ciphertexts: rotation refuses the row."""
    load_roster(engine, vault, n=4, registered=0)
    with engine.begin() as c:
        a, b = c.execute(sa.text("SELECT id, account_enc FROM items ORDER BY id LIMIT 2")).all()
        _open_window(c)
        c.execute(sa.text("UPDATE items SET account_enc = :e WHERE id = :i"), {"e": b[1], "i": a[0]})
        c.execute(sa.text("UPDATE items SET account_enc = :e WHERE id = :i"), {"e": a[1], "i": b[0]})
        c.execute(sa.text("DELETE FROM pii_rekey_window"))
    new = PiiVault.from_text(key_line + "\n" + PiiVault.new_key_line("k2"))
    with pytest.raises(PiiKeyError, match=f"items row {a[0]}: account_enc does not match account_hash"):
        reencrypt(engine, new)
    assert remaining_under_old_keys(engine, new)["items"] == 12  # that batch wrote nothing


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
        name = s.execute(sa.text("SELECT name_enc FROM items ORDER BY id LIMIT 1")).scalar_one()
    assert rotated.decrypt(bytes(name)) == loaded.body[0][0]
