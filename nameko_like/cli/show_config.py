"""``nameko_like show-config``: print the config a command would run with."""

from __future__ import annotations

import argparse
import sys

from nameko_like.cli.options import add_config_options, config_files, load_cli_config

NAME = "show-config"
HELP = "print the merged config as YAML"
DESCRIPTION = """\
Print the config that `run` and `shell` would use with the same options: the
--config files merged in order (with no --config, ./config.yaml if there is
one), ${VAR} references substituted from the environment, then --broker and
--define applied. Useful to check what a deployment's environment actually
produces. Passwords are printed as they are.
"""
EPILOG = """\
examples:
  nameko_like show-config --config config.yaml
  AMQP_HOST=rabbit nameko_like show-config --config base.yaml --config prod.yaml
  nameko_like show-config --config config.yaml --define max_workers=20
"""
MONKEY_PATCH = False
PASS_THROUGH = False

#: Read when no --config is given and it exists, as Nameko's show-config does.
DEFAULT_CONFIG_FILE = "config.yaml"


def init_parser(parser: argparse.ArgumentParser) -> None:
    """Add show-config's options."""
    add_config_options(parser)


def main(args: argparse.Namespace) -> int:
    """Print the merged config to stdout."""
    import os

    from nameko_like.config_loader import dump_config

    if not config_files(args) and os.path.isfile(DEFAULT_CONFIG_FILE):
        args.config = [DEFAULT_CONFIG_FILE]
    sys.stdout.write(dump_config(load_cli_config(args)))
    return 0
