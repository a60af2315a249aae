"""OCR tasks and the official DeepSeek-OCR prompts for each."""

from __future__ import annotations

from enum import Enum

from .errors import UnprocessableRequest

IMAGE_TOKEN = "<image>"


class Task(str, Enum):
    OCR = "ocr"
    MARKDOWN = "markdown"
    FIGURE = "figure"
    LOCATE = "locate"
    DESCRIBE = "describe"


PROMPTS: dict[Task, str] = {
    Task.OCR: "<image>\nFree OCR.",
    Task.MARKDOWN: "<image>\n<|grounding|>Convert the document to markdown.",
    Task.FIGURE: "<image>\nParse the figure.",
    Task.DESCRIBE: "<image>\nDescribe this image in detail.",
    Task.LOCATE: "<image>\nLocate <|ref|>{text}<|/ref|> in the image.",
}

MAX_LOCATE_TEXT_CHARS = 500


def parse_task(value: str, field: str = "task") -> Task:
    try:
        return Task(value.strip().lower())
    except ValueError:
        choices = ", ".join(t.value for t in Task)
        raise UnprocessableRequest(f"unknown task {value!r}; choose one of: {choices}", field=field) from None


def build_prompt(task: Task, custom_prompt: str | None = None, text_to_locate: str | None = None) -> str:
    """The prompt sent to the model: the official one, or the caller's own with ``<image>`` ensured.

    The locate task needs its text even with a custom prompt: engines report boxes for it.
    """
    official = PROMPTS[task]
    if task is Task.LOCATE:
        text = (text_to_locate or "").strip()
        if not text:
            raise UnprocessableRequest("text_to_locate is required for the locate task", field="text_to_locate")
        if len(text) > MAX_LOCATE_TEXT_CHARS:
            raise UnprocessableRequest(
                f"text_to_locate is longer than {MAX_LOCATE_TEXT_CHARS} characters", field="text_to_locate"
            )
        official = official.format(text=text)
    if custom_prompt and custom_prompt.strip():
        prompt = custom_prompt.strip()
        if prompt.count(IMAGE_TOKEN) > 1:
            raise UnprocessableRequest(f"prompt may contain {IMAGE_TOKEN} at most once (one image per request)", field="prompt")
        return prompt if IMAGE_TOKEN in prompt else f"{IMAGE_TOKEN}\n{prompt}"
    return official
