"""The CPU engine's bound: pages past the limit are refused at once, and their places come back."""

import pytest

from ocr_runner.admission import Admission
from ocr_runner.engines.base import EngineBusy

pytestmark = pytest.mark.unit


def test_refuses_past_the_limit_and_frees_places():
    admission = Admission(3)
    with admission.enter(2):
        with pytest.raises(EngineBusy), admission.enter(2):
            pass
        with admission.enter(1):
            assert admission.inside == 3
    assert admission.inside == 0
    with pytest.raises(RuntimeError), admission.enter(3):
        raise RuntimeError("a failing call still gives its places back")
    assert admission.inside == 0
