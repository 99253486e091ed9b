"""``python -m nameko_like``: the same as the ``nameko_like`` command."""

import sys

from nameko_like.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
