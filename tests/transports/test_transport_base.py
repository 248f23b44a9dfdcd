"""The transport face: error tree, names, the factory."""

from __future__ import annotations

import pytest

from gateway.errors import YktError
from gateway.transports import base as b


@pytest.mark.parametrize("cls, retryable", [
    (b.BankUnavailable, True), (b.TransferFailed, True), (b.AuthenticationFailed, False),
    (b.HostKeyMismatch, False), (b.ServerCertificateMismatch, False), (b.RemoteRefused, False),
    (b.TransportConfigError, False),
])
def test_errors_say_whether_to_retry_and_speak_chinese(cls, retryable):
    e = cls("english", bank="cqrcb")
    assert isinstance(e, YktError) and isinstance(e, b.TransportError)
    assert e.retryable is retryable and e.zh and e.bank == "cqrcb"
    assert e.plain() == f"{e.zh}\nenglish"
    assert cls("x", retryable=not retryable).retryable is (not retryable)


@pytest.mark.parametrize("name, ok", [
    ("MSG1.xml", True), ("批次001.txt", True), ("", False), (".MSG1.xml.part", False), ("..", False),
    ("a/b.xml", False), ("a\\b.xml", False), ("a\nb", False), ("a\x00b", False),
])
def test_check_name(name, ok):
    if ok:
        assert b.check_name(name) == name
    else:
        with pytest.raises(ValueError):
            b.check_name(name)


@pytest.mark.parametrize("name, report", [
    ("R1.xml", True), ("R1.xml.p7s", False), ("R1.xml.sm2", False), (".R1.xml.part", False),
    ("R1.xml.part", False), (".hidden", False),
])
def test_is_report_name(name, report):
    assert b.is_report_name(name) is report


def test_signature_needs_an_extension():
    assert b.check_signature(None, None) is None
    assert b.check_signature(b"s", "p7s") == "p7s"
    for ext in (None, "", "../x"):
        with pytest.raises(ValueError):
            b.check_signature(b"s", ext)


def test_factory_resolves_relative_key_paths_and_reports_unreadable_keys(tmp_path):
    from gateway.config import model as m

    cfg = m.SftpTransport(host="h", port=22, username="u", inbox="/inbox", outbox="/outbox",
                          host_key="bank_host.pub", client_key="our_key")
    with pytest.raises(b.TransportConfigError) as e:
        b.make_transport(cfg, reactor=None, keys_dir=tmp_path)
    assert str(tmp_path / "bank_host.pub") in str(e.value) and e.value.zh
    with pytest.raises(b.TransportConfigError):
        b.make_transport(object(), reactor=None)
