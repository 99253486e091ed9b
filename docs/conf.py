"""Sphinx configuration of the nameko_like docs.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (scripts/test does).
No extension that needs the network: the build runs offline.
"""

import os
import sys

# The package is normally installed (editable) in the virtualenv; this keeps
# the build working from a plain checkout too.
sys.path.insert(0, os.path.abspath(".."))

from nameko_like import __version__  # noqa: E402

project = "nameko_like"
author = "the nameko_like authors"
copyright = "the nameko_like authors"  # noqa: A001 - Sphinx's name for it
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

# Offline build: no intersphinx; unresolvable references stay plain text.
nitpicky = False

exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path: list[str] = []
html_theme = "alabaster"
html_title = f"nameko_like {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Literal blocks default to Python; shell sessions say `console`.
highlight_language = "python3"
