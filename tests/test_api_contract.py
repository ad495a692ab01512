"""The API against its own OpenAPI, fuzzed by schemathesis (the real tool) over real HTTP, once
per role: admin, operator, viewer, an OPD user and no login. Every check schemathesis has: no
server error, every status and content type documented, every answer valid against its
schema, invalid input refused, valid input accepted (cross-field rules excepted per
operation in tests/schemathesis.toml), Allow headers that list the documented methods.

The seed is printed; replay a failure with PANTAU_FUZZ_SEED=<seed> (or `random` for a new
one each run), and more cases per operation with PANTAU_FUZZ_EXAMPLES.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_roles_api import roles_site

ROLES = ["admin", "operator", "viewer", "opd-bpbd", "anonymous"]


def seed() -> int:
    chosen = os.environ.get("PANTAU_FUZZ_SEED", "20261201")
    return random.randrange(1, 2**31) if chosen == "random" else int(chosen)


@pytest.mark.parametrize("who", ROLES)
async def test_the_api_keeps_its_contract(tmp_path: Path, who: str) -> None:
    tool = Path(sys.executable).parent / "schemathesis"
    if not tool.exists():
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    run_seed = seed()
    examples = os.environ.get("PANTAU_FUZZ_EXAMPLES", "25")
    async with roles_site(tmp_path) as site:
        cmd = [
            str(tool), "--config-file", str(REPO / "tests" / "schemathesis.toml"), "run",
            f"{site.base}/openapi.json", "--checks", "all", "-n", examples,
            "--seed", str(run_seed), "--max-failures", "50", "--no-color",
            # Logging out ends the session the rest of the run uses.
            "--exclude-path", "/api/logout",
        ]  # fmt: skip
        if who in site.tokens:
            cmd += ["-H", f"Authorization: Bearer {site.tokens[who]}"]
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    print(f"schemathesis as {who}: seed {run_seed}, {examples} examples per operation")
    assert proc.returncode == 0, (
        f"schemathesis as {who} (replay: PANTAU_FUZZ_SEED={run_seed}):\n{text[-12000:]}"
    )
    assert "Tested:" in text and " 0 " not in text.split("Tested:")[1].split("\n")[0]
