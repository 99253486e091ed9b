"""Sphinx configuration of the nameko_like docs.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (scripts/test does).
No extension that needs the network: the build runs offline.
"""

import os
import sys

# The package is normally installed (editable) in the virtualenv; this keeps
# the build working from a plain checkout too.
sys.path.insert(0, os.path.abspath(".."))

# autodoc imports nameko_like.testing.pytest, which monkey patches the
# process it is loaded in unless told not to: Sphinx must stay unpatched.
os.environ.setdefault("NAMEKO_LIKE_NO_MONKEY_PATCH", "1")

from nameko_like import __version__  # noqa: E402

project = "nameko_like"
author = "the nameko_like authors"
copyright = "the nameko_like authors"
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
# Wide enough for code of 79 columns (the travel page's files) to show
# without scrolling; alabaster's default 940px shows about 65.
html_theme_options = {"page_width": "1100px"}
html_title = f"nameko_like {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
