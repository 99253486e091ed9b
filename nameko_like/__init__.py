"""nameko_like: a Nameko-style microservices framework."""

import os as _os
import sys as _sys

__version__ = "0.3.0"

# Opt-in: `import nameko...` resolves to nameko_like (see nameko_like.nameko_alias).
# Done here because every way in (the CLI, the pytest plugin, a script's first
# import of nameko_like) passes through this module before any service code.
if _os.environ.get("NAMEKO_LIKE_ALIAS_NAMEKO") == "1":
    from nameko_like.nameko_alias import install as _install_nameko_alias

    _install_nameko_alias(_sys.modules[__name__])
