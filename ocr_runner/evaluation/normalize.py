"""Text normalisation applied to prediction and ground truth alike before scoring.

Scores compare what an engine *read*, not how it formatted it: markdown and HTML markup
are removed, Unicode is NFKC-folded, typographic quotes and dashes are unified, and
whitespace runs collapse to one space. Case and punctuation are kept.
"""

from __future__ import annotations

import html
import re
import unicodedata

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_FENCE = re.compile(r"^\s*```[\w+-]*\s*$", re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_BULLET = re.compile(r"^\s*[-*+]\s+(\[[ xX]\]\s+)?", re.MULTILINE)
_PAGE_SPLIT = re.compile(r"<--- Page Split --->")
_TRANSLATE = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
        "\u00a0": " ", "\u00ad": "", "\u200b": "", "\u200e": "", "\u200f": "", "\ufeff": "",
    }
)


def normalize_text(text: str) -> str:
    """NFKC, unified quotes and dashes, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    return " ".join(text.split())


def marks_as_in(reference: str, text: str) -> str:
    """``text`` without combining marks (Unicode category Mn) when ``reference`` holds none.

    A ground truth made without them (a consonants-only Hebrew text, Arabic without vowel signs) is compared
    with the reading's letters alone, as it was made from the full text: points an engine reads are not errors
    against a truth that left them out. After NFKC, Latin accents are precomposed letters, not marks."""
    reference = unicodedata.normalize("NFKC", reference)
    if any(unicodedata.category(c) == "Mn" for c in reference):
        return text
    return "".join(c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Mn")


def strip_markup(text: str) -> str:
    """Plain text from markdown or HTML output: tags, comments, fences, heading marks, pipes gone."""
    text = _PAGE_SPLIT.sub("\n", text)
    text = _COMMENT.sub(" ", text)
    text = _IMAGE_LINK.sub(" ", text)
    text = re.sub(r"</(td|th)>", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"<br\s*/?>|</(tr|p|div|h\d|li)>", "\n", text, flags=re.IGNORECASE)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _FENCE.sub("", text)
    text = _TABLE_RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = re.sub(r"(?m)^\s*\|\s*|\s*\|\s*$", "", text)  # a table row's outer pipes
    text = re.sub(r"\s\|\s", " ", text)  # and its inner ones
    return text


def text_for_scoring(text: str) -> str:
    """What CER and WER compare: markup stripped, then normalised."""
    return normalize_text(strip_markup(text))


def words(text: str) -> list[str]:
    """Words for WER and bag-of-words scores: whitespace tokens of the normalised text."""
    return text_for_scoring(text).split()


# --- LaTeX -----------------------------------------------------------------------------
_LATEX_DROP = re.compile(
    r"\\(?:label|tag|vspace|hspace)\*?\{[^{}]*\}"  # labels and explicit spacing with an argument
)
_LINE_SKIP = re.compile(r"\\\\\[[^\]]*\]")  # the optional skip of a line break: \\[4mm]
_LATEX_SPACING = {
    r"\,", r"\;", r"\:", r"\!", r"\ ", r"\quad", r"\qquad", r"\hfill", r"\displaystyle", r"\textstyle",
    r"\scriptstyle", r"\nonumber", r"\left", r"\right", r"\big", r"\Big", r"\bigg", r"\Bigg", r"\limits",
}
_LATEX_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[^\s\\]")
_LATEX_ALIASES = {r"\rm": r"\mathrm", r"\bf": r"\mathbf", r"\it": r"\mathit", r"\cal": r"\mathcal", r"\le": r"\leq",
                  r"\ge": r"\geq", r"\ne": r"\neq", r"\to": r"\rightarrow", r"\lbrace": r"\{", r"\rbrace": r"\}"}


def latex_tokens(source: str) -> list[str]:
    """LaTeX as a token list with layout-only macros removed, so equal formulas compare equal.

    Math delimiters (``$``, ``$$``, ``\\[ \\]``, ``\\( \\)``) and spacing macros go; ``\\left``
    and ``\\right`` go (the delimiter stays); font switches get one spelling.
    """
    text = unicodedata.normalize("NFKC", source).strip()
    text = re.sub(r"^\$\$?|\$\$?$", "", text.strip()).strip()
    text = re.sub(r"^\\[\[(]|\\[\])]$", "", text).strip()
    text = _LATEX_DROP.sub(" ", text)
    text = _LINE_SKIP.sub(r" \\\\ ", text)
    tokens = [_LATEX_ALIASES.get(t, t) for t in _LATEX_TOKEN.findall(text)]
    tokens = [t for t in tokens if t not in _LATEX_SPACING and t != "~"]
    return _drop_redundant_braces(tokens)


def _drop_redundant_braces(tokens: list[str]) -> list[str]:
    """``{x}`` after an operator that takes one token (``^``, ``_``) is written ``x`` too."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if (
            tokens[i] == "{" and i + 2 < len(tokens) and tokens[i + 2] == "}"
            and out and out[-1] in {"^", "_"}
        ):
            out.append(tokens[i + 1])
            i += 3
            continue
        out.append(tokens[i])
        i += 1
    return out


def normalize_latex(source: str) -> str:
    """The token list as one string (tokens separated by spaces): what formula scores compare."""
    return " ".join(latex_tokens(source))
