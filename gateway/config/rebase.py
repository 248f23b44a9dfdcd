"""Derived configurations: the same banks with keys elsewhere, or pointed at other endpoints.

Used where the network addresses are decided at run time: tests and the demo start simulated banks on
ephemeral loopback ports and point the gateway at them. Returns new frozen objects; nothing is mutated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway.config.model import BankKeys, Config, FolderTransport, HttpsTransport, SftpTransport


def _move(p: Path, old: Path, new: Path) -> Path:
    try:
        return new / Path(p).relative_to(old)
    except ValueError:
        return p


def with_keys_dir(cfg: Config, keys_dir: Path) -> Config:
    """Every key and certificate path moved from ``cfg.keys_dir`` to ``keys_dir``."""
    keys_dir = Path(keys_dir).resolve()
    banks = {}
    for bank_id, b in cfg.banks.items():
        k = BankKeys(*(_move(getattr(b.keys, f.name), cfg.keys_dir, keys_dir) for f in dataclasses.fields(BankKeys)))
        t = b.transport
        if isinstance(t, SftpTransport):
            t = dataclasses.replace(t, host_key=_move(t.host_key, cfg.keys_dir, keys_dir),
                                    client_key=_move(t.client_key, cfg.keys_dir, keys_dir))
        elif isinstance(t, HttpsTransport):
            t = dataclasses.replace(t, server_cert=_move(t.server_cert, cfg.keys_dir, keys_dir),
                                    client_cert=_move(t.client_cert, cfg.keys_dir, keys_dir),
                                    client_key=_move(t.client_key, cfg.keys_dir, keys_dir))
        banks[bank_id] = dataclasses.replace(b, keys=k, transport=t)
    return dataclasses.replace(cfg, keys_dir=keys_dir, banks=banks)


def with_endpoint(cfg: Config, bank_id: str, *, sftp_port: int | None = None, https_url: str | None = None,
                  folder: tuple[Path, Path] | None = None) -> Config:
    """Bank ``bank_id`` reached at another port / URL / folder pair (same transport kind)."""
    b = cfg.banks[bank_id]
    t = b.transport
    if isinstance(t, SftpTransport) and sftp_port is not None:
        t = dataclasses.replace(t, port=sftp_port)
    elif isinstance(t, HttpsTransport) and https_url is not None:
        t = dataclasses.replace(t, url=https_url)
    elif isinstance(t, FolderTransport) and folder is not None:
        t = dataclasses.replace(t, outgoing=folder[0], incoming=folder[1])
    return dataclasses.replace(cfg, banks={**cfg.banks, bank_id: dataclasses.replace(b, transport=t)})
