"""The ``ykt`` group, its shared options and the error handling every command gets."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from gateway.db.engine import database_url
from gateway.errors import YktError

DEFAULT_CONFIG = Path("config")


@dataclass
class Context:
    db_url: str
    config_dir: Path
    debug: bool
    json: bool

    def emit(self, human: str, machine: object) -> None:
        """Print ``human`` text, or ``machine`` as JSON under ``--json``."""
        if self.json:
            click.echo(json.dumps(machine, ensure_ascii=False, indent=2, default=str))
        else:
            click.echo(human)

    def config(self):
        from gateway.config import load

        return load(self.config_dir)


class YktGroup(click.Group):
    """Turns known errors into a plain message and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (YktError, ValueError, OSError) as e:
            obj = ctx.find_object(Context)
            if obj is not None and obj.debug:
                raise
            message = e.plain() if isinstance(e, YktError) else str(e)
            click.echo(f"ykt: {message}", err=True)
            click.echo("(run with --debug for details)", err=True)
            sys.exit(1)


@click.group(cls=YktGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db_url", metavar="URL", help="Database URL (default: $YKT_DATABASE_URL or sqlite:///var/yikatong.db).")
@click.option("--config", "config_dir", type=click.Path(path_type=Path), default=DEFAULT_CONFIG, show_default=True,
              help="Configuration directory.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, config_dir: Path, debug: bool, as_json: bool) -> None:
    """yikatong (一卡通): pay subsidies into citizens' own bank accounts through partner banks,
    and prove that every yuan arrived, on time, to the right person.

    \b
    Typical order of work:
      ykt config check          check the configuration
      ykt db upgrade            create or migrate the database
      ykt calendar is-workday   ask the working-day calendar
    """
    ctx.obj = Context(database_url(db_url), config_dir, debug, as_json)


def _register() -> None:
    """Every ``gateway/cli/*_cmd.py`` module contributes its ``group`` (or ``command``)."""
    import importlib
    import pkgutil

    import gateway.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.endswith("_cmd"):
            module = importlib.import_module(f"gateway.cli.{info.name}")
            cli.add_command(getattr(module, "group", None) or module.command)


_register()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="ykt")
