"""``ykt simulate-bank``: run one simulated partner bank until Ctrl-C / SIGTERM."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import click


@click.command("simulate-bank")
@click.option("--bank", "bank_id", required=True, help="Bank id from banks.toml.")
@click.option("--scenario", default="default", show_default=True,
              help="Scenario file, or a name in config/scenarios/.")
@click.option("--seed", type=int, default=None, help="Seed (default: the scenario's).")
@click.option("--sftp-port", type=int, default=None, help="SFTP port; 0 for an ephemeral one (default: from config, else ephemeral). The ports are printed.")
@click.option("--https-port", type=int, default=None, help="HTTPS port; 0 for an ephemeral one (default: from config, else ephemeral).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="The bank's directory (default: var/banks/<bank>).")
@click.option("--keys-dir", type=click.Path(path_type=Path), default=None, help="Keys (default: from banks.toml).")
@click.option("--warp", type=float, default=1.0, show_default=True,
              help="Simulated seconds per real second (e.g. 3600: an hour a second).")
@click.option("--start", "start_at", default=None, metavar="YYYY-MM-DDTHH:MM",
              help="Simulated start time, bank local time (default: now).")
@click.pass_obj
def command(ctx, bank_id, scenario, seed, sftp_port, https_port, root, keys_dir, warp, start_at) -> None:
    """Run simulated bank BANK (SFTP and HTTPS with client certificates, on 127.0.0.1).

    SIGUSR1 jumps the bank's clock to 09:00 on its next working day (releasing what falls due).
    """
    from twisted.internet import reactor

    from simulators.bank import CST
    from simulators.clock import WarpClock
    from simulators.keys import ensure_keys
    from simulators.service import build_bank

    config = ctx.config()
    if bank_id not in config.banks:
        raise click.UsageError(f"unknown bank {bank_id!r}; known: {', '.join(sorted(config.banks))}")
    keys = ensure_keys(keys_dir or config.keys_dir, config)
    origin = None
    if start_at:
        origin = dt.datetime.fromisoformat(start_at).replace(tzinfo=CST).timestamp()
    clock = WarpClock(reactor, factor=warp, origin=origin) if (warp != 1.0 or origin is not None) else reactor
    root = root or Path("var/banks") / bank_id
    bank = build_bank(bank_id, config=config, keys=keys, root=root, reactor=reactor, clock=clock,
                      scenario=scenario, seed=seed, sftp_port=sftp_port, https_port=https_port)
    bank.start()
    kb = keys.bank(bank_id)
    click.echo(f"{bank_id} ({config.banks[bank_id].name}) scenario={bank.core.scenario.source} seed={bank.core.seed}")
    click.echo(f"  bank time  {bank.now():%Y-%m-%d %H:%M:%S %Z}  warp x{warp:g}")
    click.echo(f"  sftp       sftp://{bank.username}@127.0.0.1:{bank.sftp_port}/  host key {kb.ssh_host_pub}")
    click.echo(f"  https      {bank.https_url}  server cert {kb.tls_cert}")
    click.echo(f"  directory  {Path(root).resolve()}")
    click.echo("Ctrl-C or SIGTERM to stop; SIGUSR1 to jump to the next working day.", err=True)

    def next_day(*_):
        if isinstance(clock, WarpClock):
            clock.jump(bank.seconds_to_next_working_day() + 1)
            reactor.callFromThread(bank.time_changed)

    def shutdown(*_):
        reactor.callFromThread(lambda: bank.stop().addBoth(lambda _: reactor.stop()))

    signal.signal(signal.SIGUSR1, next_day)
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    reactor.run(installSignalHandlers=False)
