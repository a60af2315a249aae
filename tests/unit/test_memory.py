"""glibc malloc controls: applied on glibc, refused gracefully otherwise."""

import platform

import pytest

from ocr_runner.memory import limit_malloc_arenas, release_free_memory, start_periodic_trim

pytestmark = pytest.mark.unit
glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_arena_cap_and_trim_reach_glibc():
    assert limit_malloc_arenas(8) is True
    assert release_free_memory() is True


def test_zero_turns_each_control_off():
    assert limit_malloc_arenas(0) is False
    assert start_periodic_trim(0) is False
