"""The docs' examples (``docs/examples``) are importable by their file names.

They are appended to ``sys.path``, never put first, and named so that none
shadows a module of the standard library or a dependency.
"""

import sys
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES_DIR = DOCS_DIR / "examples"

if str(EXAMPLES_DIR) not in sys.path:
    sys.path.append(str(EXAMPLES_DIR))
