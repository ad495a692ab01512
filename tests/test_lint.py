"""ruff is part of the test command: the code base stays clean."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_ruff_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
