"""What every ``kyso`` command group shares: exit codes, the configuration, the service."""

from __future__ import annotations

import click

from kyso.config import Config, load_config

EXIT_FAILED = 1
EXIT_USAGE = 2


def config_of(ctx: click.Context) -> Config:
    """The configuration named by ``--config`` / ``KYSO_CONFIG``, or the embedded default."""
    return load_config(ctx.find_root().obj["config_path"])


def service_of(ctx: click.Context):
    """The service, opened on that configuration (close it when done)."""
    from kyso.service import Kyso

    return Kyso.open(config_of(ctx))
