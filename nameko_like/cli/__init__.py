"""The ``nameko_like`` command line: one module per command.

Each command module provides ``NAME``, ``HELP``, ``DESCRIPTION``, ``EPILOG``,
``MONKEY_PATCH``, ``init_parser(parser)`` and ``main(args) -> int``. Their
top-level imports must stay light (nothing that imports ``socket``,
``threading`` users, eventlet or kombu): :mod:`nameko_like.cli.main` imports
every command module before it knows whether to monkey-patch.
"""
