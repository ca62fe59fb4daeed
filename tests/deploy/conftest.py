"""Make the integration harness importable (``integration.harness``) from these tests.

pytest runs with ``--import-mode=importlib`` and keeps ``tests/`` off ``sys.path``; the test
packages are imported under their directory names (``integration``, ``deploy``), so adding
``tests/`` lets this package reuse the harness under the very name pytest gives it.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.append(TESTS)
