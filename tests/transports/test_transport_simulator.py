"""Both network transports against the partner-bank simulator (``simulators/``) over real sockets:
what the gateway will actually talk to in the integration and crash tests."""

from __future__ import annotations

import pytest

from gateway.transports.https import HttpsClient
from gateway.transports.sftp import SftpClient
from simulators import testing


def _client(rb, reactor):
    if rb.bank.transport.kind == "sftp":
        return SftpClient(reactor=reactor, host="127.0.0.1", port=rb.sftp_port, username=rb.username,
                          inbox="/inbox", outbox="/outbox", host_key=rb.bank_keys.ssh_host_pub,
                          client_key=rb.keys.gateway_ssh_key, bank=rb.bank_id)
    return HttpsClient(reactor=reactor, url=rb.https_url, server_cert=rb.bank_keys.tls_cert,
                       client_cert=rb.keys.gateway_tls_cert, client_key=rb.keys.gateway_tls_key, bank=rb.bank_id)


@pytest.mark.parametrize("bank_id", ["psbc-xs", "icbc-cq"])  # SFTP, HTTPS
def test_deliver_twice_then_collect_and_acknowledge_the_report(bank_id, twisted_reactor, in_reactor, tmp_path):
    rb = testing.start_bank(bank_id, root=tmp_path / bank_id)
    client = _client(rb, twisted_reactor.reactor)
    try:
        # Not a valid pain.001: the bank takes the file and refuses it with a report of its own.
        first = in_reactor(client.deliver, "NOTPAIN1.xml", b"<junk/>", b"not a signature", signature_ext="p7s")
        again = in_reactor(client.deliver, "NOTPAIN1.xml", b"<junk/>", b"not a signature", signature_ext="p7s")
        assert not first.already_there and again.already_there
        rb.wait()
        names = in_reactor(client.list_reports)
        assert len(names) == 1, names  # one refusal report: the second delivery was not processed again
        data, _signature = in_reactor(client.fetch_report, names[0])
        assert data
        in_reactor(client.ack_report, names[0])
        assert in_reactor(client.list_reports) == []
    finally:
        in_reactor(client.close)
        rb.stop()
