"""The text-layer judgement and spacing rules on hand-made runs."""

from __future__ import annotations

import pytest

from ocr_runner.engines.text_layer import judge, tidy

pytestmark = pytest.mark.unit

PROSE = "The quick brown fox jumps over the lazy dog and runs into a wood where it sleeps all day long."


def test_a_sound_layer_passes() -> None:
    assert judge([PROSE, "Results in Table 2 show a gain of 3 %."]) is None


def test_letter_spaced_layers_fail() -> None:
    spaced = " ".join("The 20 Most Important Results of the Year in Review".replace(" ", ""))
    assert judge([spaced, spaced]) == "letter-spaced"
    assert judge(["I saw a cat and a dog, and a bird: " * 3]) is None  # one-letter words of ordinary text


def test_glyphs_without_unicode_fail() -> None:
    assert judge([PROSE[:40] + "\ue001\ue002\ue003\ufffd"]) == "glyphs without Unicode"
    assert judge(["", "  "]) == "empty"


def test_spaces_before_punctuation_and_inside_brackets_go() -> None:
    assert tidy("is it hype ? yes , 2004; 13 :447") == "is it hype? yes, 2004; 13:447"
    assert tidy("add( a, b ) {") == "add(a, b) {"
    assert tidy("the end . Next") == "the end. Next"
    assert tidy("a - b and 3 . 5") == "a - b and 3 . 5"  # dashes, and dots after digits, are left alone


def test_a_lam_alef_ligature_mapped_in_visual_order_is_put_back() -> None:
    """"الإنتاجية والمشكلات" as a PDF maker wrote it: each lam-alef ligature glyph mapped alef first."""
    from ocr_runner.engines.text_layer import logical_ligatures

    written = "اإلنتاجية والمشكالت مثال"
    glyph_pairs = {1, 16}  # characters 1-2 and 16-17 are one glyph each; the article and "مثال" are two glyphs
    assert logical_ligatures(written, lambda i: i in glyph_pairs) == "الإنتاجية والمشكلات مثال"
    assert logical_ligatures(written, lambda i: False) == written
