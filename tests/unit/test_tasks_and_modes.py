import pytest

from ocr_runner.errors import UnprocessableRequest
from ocr_runner.http.errors import status_of
from ocr_runner.modes import KNOWN_SIZES, ResolutionMode, snap_mode, validate_mode
from ocr_runner.tasks import PROMPTS, Task, build_prompt, parse_task

pytestmark = pytest.mark.unit

OCR2_MODES = (ResolutionMode(1024, 768, True), ResolutionMode(768, 768, False), ResolutionMode(1024, 1024, False))


@pytest.mark.parametrize(
    ("task", "prompt"),
    [
        (Task.OCR, "<image>\nFree OCR."),
        (Task.MARKDOWN, "<image>\n<|grounding|>Convert the document to markdown."),
        (Task.FIGURE, "<image>\nParse the figure."),
        (Task.DESCRIBE, "<image>\nDescribe this image in detail."),
    ],
)
def test_official_prompts(task, prompt):
    assert PROMPTS[task] == prompt
    assert build_prompt(task) == prompt


def test_locate_prompt_wraps_the_text():
    assert build_prompt(Task.LOCATE, text_to_locate=" Total ") == "<image>\nLocate <|ref|>Total<|/ref|> in the image."


@pytest.mark.parametrize("text", [None, "", "   ", "x" * 501])
def test_locate_needs_a_reasonable_text(text):
    with pytest.raises(UnprocessableRequest) as info:
        build_prompt(Task.LOCATE, text_to_locate=text)
    assert info.value.field == "text_to_locate"


def test_custom_prompt_gets_the_image_token_once():
    assert build_prompt(Task.OCR, "Read it.") == "<image>\nRead it."
    assert build_prompt(Task.OCR, "<image>\nRead it.") == "<image>\nRead it."
    with pytest.raises(UnprocessableRequest):
        build_prompt(Task.OCR, "<image><image> two images")


def test_parse_task_accepts_case_and_rejects_unknown():
    assert parse_task("Markdown") is Task.MARKDOWN
    with pytest.raises(UnprocessableRequest) as info:
        parse_task("translate")
    assert status_of(info.value) == 422 and "ocr" in info.value.message


@pytest.mark.parametrize(("field", "base", "tile"), [("base_size", 37, 640), ("image_size", 1024, 99999)])
def test_sizes_outside_every_mode_are_422(field, base, tile):
    with pytest.raises(UnprocessableRequest) as info:
        validate_mode(base, tile, True)
    assert info.value.field == field and status_of(info.value) == 422


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ((1024, 640, True), (1024, 768, True)),  # the seed's defaults
        ((1280, 640, True), (1024, 768, True)),
        ((512, 512, False), (768, 768, False)),
        ((640, 640, False), (768, 768, False)),
        ((1024, 1024, False), (1024, 1024, False)),
        ((1280, 1280, False), (1024, 1024, False)),
        ((768, 768, False), (768, 768, False)),
    ],
)
def test_snap_to_ocr2_modes(requested, expected):
    assert snap_mode(validate_mode(*requested), OCR2_MODES) == ResolutionMode(*expected)


def test_every_known_size_validates():
    for size in KNOWN_SIZES:
        assert validate_mode(size, size, False).base_size == size
