"""Evaluation metrics on hand-made cases whose answers are known."""

from __future__ import annotations

import pytest

from ocr_runner.evaluation import metrics
from ocr_runner.evaluation.normalize import marks_as_in, normalize_latex, normalize_text, strip_markup, text_for_scoring

pytestmark = pytest.mark.unit


def test_cer_is_edit_distance_over_reference_length() -> None:
    assert metrics.cer("abcdefghij", "abcdefghij") == 0.0
    assert metrics.cer("abcdefghij", "abXdefghij") == pytest.approx(1 / 10)  # one substitution
    assert metrics.cer("abcdefghij", "abcdefgh") == pytest.approx(2 / 10)  # two deletions
    assert metrics.cer("kitten", "sitting") == pytest.approx(3 / 6)  # the textbook distance of 3
    assert metrics.cer("abc", "abcabcabc") == pytest.approx(2.0)  # insertions can exceed 1
    assert metrics.cer("", "") == 0.0
    assert metrics.cer("", "x") == 1.0


def test_cer_ignores_whitespace_unicode_form_and_markup() -> None:
    assert metrics.cer("Hello  world\n\nagain", "Hello world again") == 0.0
    assert metrics.cer("ﬁne café", "fine cafe\u0301") == 0.0  # NFKC: ligature and combining accent
    assert metrics.cer("“quoted” – dash", '"quoted" - dash') == 0.0
    assert metrics.cer("Title\n\nBody text", "## Title\n\n**Body** text") == 0.0
    assert metrics.cer("a b", "<table><tr><td>a</td><td>b</td></tr></table>") == 0.0
    assert metrics.cer("Case", "case") == pytest.approx(1 / 4)  # case is kept


def test_wer_counts_word_edits() -> None:
    assert metrics.wer("the cat sat on the mat", "the cat sat on the mat") == 0.0
    assert metrics.wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)
    assert metrics.wer("one two", "one two three four") == pytest.approx(1.0)


def test_bag_of_words_is_order_free() -> None:
    assert metrics.bag_of_words("TOTAL 12.50 CASH", "CASH TOTAL 12.50").f1 == 1.0
    score = metrics.bag_of_words("a b c d", "a b x")  # 2 common: precision 2/3, recall 2/4
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == pytest.approx(1 / 2)
    assert score.f1 == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert metrics.bag_of_words("a a b", "a b b").f1 == pytest.approx(2 / 3)  # multiset, not set
    assert metrics.bag_of_words("a", "").f1 == 0.0


TABLE = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>"


def test_teds_identical_and_different_tables() -> None:
    assert metrics.teds(TABLE, TABLE) == 1.0
    # One cell's text wrong: tree of 1 table + 2 tr + 4 td = 7 nodes, one rename of cost 1.
    wrong_cell = TABLE.replace("<td>d</td>", "<td>x</td>")
    assert metrics.teds(TABLE, wrong_cell) == pytest.approx(1 - 1 / 7)
    assert metrics.teds(TABLE, wrong_cell, structure_only=True) == 1.0
    # A missing row: 3 nodes deleted out of 7.
    assert metrics.teds(TABLE, "<table><tr><td>a</td><td>b</td></tr></table>") == pytest.approx(1 - 3 / 7)
    assert metrics.teds(TABLE, "no table at all") == 0.0
    spanned = "<table><tr><td colspan=\"2\">a</td></tr><tr><td>c</td><td>d</td></tr></table>"
    assert metrics.teds(TABLE, spanned, structure_only=True) == pytest.approx(1 - 2 / 7)  # one rename, one delete


def test_markdown_tables_are_converted_for_teds() -> None:
    markdown = "Intro\n\n| a | b |\n|---|---|\n| c | d |\n\nAfter"
    assert metrics.teds(TABLE, metrics.table_html(markdown)) == 1.0
    assert metrics.table_html("plain text") == ""


def test_latex_normalisation() -> None:
    assert normalize_latex(r"\frac{a}{b}") == normalize_latex(r"$$ \frac { a } { b } $$")
    assert normalize_latex(r"x^{2} \, + \left( y \right) \label{eq1}") == normalize_latex(r"x^2+(y)")
    assert normalize_latex(r"{\rm d}x \le 1") == normalize_latex(r"{\mathrm d}x \leq 1")
    assert normalize_latex(r"a \\[4mm] b \hfill") == normalize_latex(r"a \\ b")
    assert metrics.formula_score(r"\alpha + \beta", r"\alpha+\beta") == 1.0
    assert metrics.formula_score(r"a + b", r"a - b") == pytest.approx(2 / 3)  # 1 of 3 tokens differs


def test_normalisers() -> None:
    assert normalize_text("  a\u00a0b\tc\n") == "a b c"
    assert strip_markup("<!-- image -->\n# Head") .strip() == "Head"
    assert text_for_scoring("- [x] done\n- item") == "done item"


def test_marks_a_truth_left_out_are_left_out_of_the_reading() -> None:
    pointed = "\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea"  # bereshit, with its points
    consonants = "\u05d1\u05e8\u05d0\u05e9\u05d9\u05ea"
    assert marks_as_in(consonants, pointed) == consonants  # a consonants-only truth
    assert marks_as_in(pointed, pointed) == pointed  # a pointed truth keeps the reading's points
    assert marks_as_in("Zurich", "Zu\u0308rich") == "Z\u00fcrich"  # Latin accents are letters after NFKC
