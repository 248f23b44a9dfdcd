"""``ykt serve``: run the gateway until SIGTERM or Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("serve")
@click.option("--port", default=8080, show_default=True, help="Admin API and console port.")
@click.option("--interface", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--interval", default=60.0, show_default=True, help="Seconds between gateway cycles.")
@click.option("--var", "var_dir", default="var", show_default=True, type=click.Path(path_type=Path),
              help="Where the outbox, inbound files and locks live.")
@click.pass_obj
def command(ctx, port: int, interface: str, interval: float, var_dir: Path) -> None:
    """Run the long-lived gateway: scheduler (dispatch, polling, retries, daily deadline check),
    bank transports, the admin API and console, and /health. Stops cleanly on SIGTERM."""
    from twisted.internet import reactor

    from gateway import logs
    from gateway.cli.common import vault_for
    from gateway.db import upgrade
    from gateway.service.serve import GatewayService, install_signal_handlers

    logs.configure()
    cfg = ctx.config()
    upgrade(ctx.db_url)
    svc = GatewayService(reactor=reactor, cfg=cfg, db_url=ctx.db_url, vault=vault_for(ctx, cfg),
                         var_dir=var_dir.resolve(), interval_seconds=interval, http_port=port,
                         http_interface=interface)
    reactor.callWhenRunning(svc.start)
    install_signal_handlers(reactor)
    reactor.run()
