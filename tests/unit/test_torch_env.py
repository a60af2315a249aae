"""Process-wide torch runtime choices made before torch loads."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit
READ_POLICY = "import os, service; print(os.environ.get('OMP_WAIT_POLICY'))"


def wait_policy_after_import(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", READ_POLICY], capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def test_service_lets_idle_openmp_threads_sleep():
    assert wait_policy_after_import() == "PASSIVE"


def test_an_operator_choice_is_kept():
    assert wait_policy_after_import(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
