"""The one place nameko_like imports eventlet.

eventlet >= 0.37 emits a long ``EventletDeprecationWarning`` the moment it is
imported. Users chose eventlet by choosing nameko_like, so repeating that
advice on every CLI run and test session is noise: we silence exactly that
warning category (and nothing else) before the first import. Every module of
the package imports eventlet through here.
"""

import warnings

# The filter must be installed before eventlet's own __init__ runs, and it is
# scoped to the one category eventlet uses for this notice.
warnings.filterwarnings(
    "ignore", message=r"\s*Eventlet is deprecated", category=Warning
)

import eventlet  # E402 allowed for this file in pyproject.toml

__all__ = ["eventlet"]
