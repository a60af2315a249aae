"""schemathesis against the service's own OpenAPI document, on a real server."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_no_5xx_and_responses_match_the_schema(rapid_server, tmp_path):
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", f"{rapid_server.url}/docs.json",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--max-examples", "25", "--request-timeout", "120", "--seed", "20261125",
         "--exclude-path", "/metrics"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
