"""Request preparation and response assembly around engine calls (no HTTP here).

``prepare`` validates and decodes everything a client sent (images, PDFs, options),
so a bad request fails alone before it reaches a batch; ``page_result`` and
``assemble`` post-process engine results into the seed-shaped response.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

from .documents import Page, load_document
from .engines.base import EnginePage, EngineResult
from .errors import EngineItemFailed, ErrorCode, OCRError, UnprocessableRequest, error_for
from .figures import annotate, crop_figures, link_figures
from .grounding import Box, extract_boxes, strip_grounding, tidy_markdown
from .images import load_image
from .modes import ResolutionMode, validate_mode
from .options import LocateOptions
from .schemas import (
    AnnotatedPage,
    BoxOut,
    FigureOut,
    Metadata,
    OCRResponse,
    PageResult,
    PageTimings,
    RepetitionOut,
    RepetitionSummary,
    ResolutionModeOut,
    Timings,
)
from .settings import Settings
from .tasks import Task, build_prompt

PAGE_SEPARATOR = "\n\n<--- Page Split --->\n\n"
# Tasks whose answer is the page's text: a PDF page's own text layer may stand in for recognition.
TEXT_LAYER_TASKS = (Task.OCR, Task.MARKDOWN)


@dataclass(frozen=True)
class DocumentRequest:
    """What a client asked for, before validation: a task, the document's bytes and its options."""

    task: Task
    data: bytes
    options: LocateOptions = field(default_factory=LocateOptions)
    field: str = "image_base64"  # the request field the document came in, named by its errors


@dataclass(frozen=True)
class PreparedPage:
    page: Page
    engine_page: EnginePage


@dataclass(frozen=True)
class PreparedDocument:
    task: Task
    prompt: str
    requested: ResolutionMode
    document_type: str
    page_count: int
    pages: list[PreparedPage]
    decode_ms: float
    started: float = field(default_factory=time.perf_counter)
    include_images: bool = False
    annotate: bool = False


@dataclass(frozen=True)
class PageOutcome:
    """One page's engine result, or the error that stopped it."""

    result: EngineResult | None
    error: OCRError | None
    engine_ms: float
    cache_hit: bool = False


def prepare(settings: Settings, request: DocumentRequest) -> PreparedDocument:
    started = time.perf_counter()
    options = request.options
    if options.prompt is not None and len(options.prompt) > settings.max_prompt_chars:
        raise UnprocessableRequest(f"prompt is longer than {settings.max_prompt_chars} characters", field="prompt")
    if options.max_new_tokens is not None and not 1 <= options.max_new_tokens <= settings.max_new_tokens:
        raise UnprocessableRequest(
            f"max_new_tokens must be between 1 and {settings.max_new_tokens}", field="max_new_tokens"
        )
    requested = validate_mode(
        settings.base_size if options.base_size is None else options.base_size,
        settings.image_size if options.image_size is None else options.image_size,
        settings.crop_mode if options.crop_mode is None else options.crop_mode,
    )
    prompt = build_prompt(request.task, options.prompt, options.text_to_locate)
    document = load_document(
        request.data,
        field=request.field,
        pages=options.pages,
        max_pages=settings.max_pdf_pages,
        max_pixels=settings.max_image_pixels,
        base_size=requested.base_size,
        crop_mode=requested.crop_mode,
    )
    locate_text = (options.text_to_locate or "").strip() or None if request.task is Task.LOCATE else None
    use_text_layer = not options.force_ocr and request.task in TEXT_LAYER_TASKS
    pages = [
        PreparedPage(
            page,
            EnginePage(
                image=page.image,
                task=request.task,
                prompt=prompt,
                base_size=requested.base_size,
                image_size=requested.image_size,
                crop_mode=requested.crop_mode,
                max_new_tokens=options.max_new_tokens,
                locate_text=locate_text,
                text_layer=[(r.text, r.x1, r.y1, r.x2, r.y2) for r in page.text_layer]
                if use_text_layer and page.text_layer else None,
            ),
        )
        for page in document.pages
    ]
    return PreparedDocument(
        task=request.task,
        prompt=prompt,
        requested=requested,
        document_type=document.kind,
        page_count=document.page_count,
        pages=pages,
        decode_ms=(time.perf_counter() - started) * 1000,
        started=started,
        include_images=options.include_images,
        annotate=options.annotate,
    )


def outcome_error(result: EngineResult) -> OCRError:
    """The typed error for an engine result that carries one."""
    code = result.error_code or ErrorCode.ENGINE_FAILURE
    if code is ErrorCode.ENGINE_FAILURE:
        return EngineItemFailed(f"the engine failed on this image: {result.error}")
    # The page's own fault (unreadable, rejected by the processor) or the engine's state (full): kept as is.
    field = "image" if code in (ErrorCode.INVALID_INPUT, ErrorCode.UNPROCESSABLE) else None
    return error_for(code, result.error or code.value, field=field)


def page_result(
    task: Task, prepared: PreparedPage, outcome: PageOutcome, *, link_images: bool = False
) -> PageResult:
    page = prepared.page
    base = {"page": page.number, "image_width": page.width, "image_height": page.height}
    result = outcome.result
    error = outcome.error or (outcome_error(result) if result is not None and result.error is not None else None)
    if error is not None or result is None:
        error = error or EngineItemFailed("no result")
        return PageResult(success=False, error=error.message, error_code=error.code, **base)
    boxes = [BoxOut(**vars(b), page=page.number) for b in extract_boxes(result.text, page.width, page.height)]
    effective = None
    if result.effective_base_size is not None:
        effective = ResolutionModeOut(
            base_size=result.effective_base_size,
            image_size=result.effective_image_size or result.effective_base_size,
            crop_mode=bool(result.effective_crop_mode),
        )
    return PageResult(
        success=True,
        result=result.text if task is Task.LOCATE else _readable(
            task, strip_grounding(link_figures(result.text, page.number) if link_images else result.text)
        ),
        raw_result=result.text,
        boxes=boxes,
        output_tokens=result.output_tokens,
        batch_size=result.batch_size,
        effective_mode=effective,
        cache_hit=outcome.cache_hit,
        timings=PageTimings(engine_ms=round(outcome.engine_ms, 2), inference_ms=round(result.inference_ms, 2)),
        note=result.note,
        repetition=RepetitionOut(**result.repetition.model_dump()) if result.repetition is not None else None,
        source=result.source,
        **base,
    )


def assemble(document: PreparedDocument, outcomes: list[PageOutcome]) -> OCRResponse:
    """The response for a whole document; a single image keeps the seed's exact shape.

    Raises the page's typed error when a single image failed, or when every page of a PDF did.
    """
    pages = [
        page_result(document.task, p, o, link_images=document.include_images)
        for p, o in zip(document.pages, outcomes)
    ]
    succeeded = [(p, o) for p, o in zip(pages, outcomes) if p.success and o.result is not None]
    if not succeeded:
        first = outcomes[0]
        if first.error is not None:
            raise first.error
        if first.result is not None and first.result.error is not None:
            raise outcome_error(first.result)
        raise EngineItemFailed("no page could be read")
    first_page, first_outcome = succeeded[0]
    engine_result = first_outcome.result
    assert engine_result is not None
    joiner = PAGE_SEPARATOR if document.document_type == "pdf" else ""
    metadata = Metadata(
        prompt=document.prompt,
        task=document.task.value,
        engine=engine_result.engine,
        model=engine_result.model,
        requested_mode=ResolutionModeOut(**vars(document.requested)),
        effective_mode=first_page.effective_mode,
        image_width=document.pages[0].page.width,
        image_height=document.pages[0].page.height,
        output_tokens=_sum_or_none([p.output_tokens for p in pages if p.success]),
        batch_size=max((p.batch_size or 1) for p in pages if p.success),
        timings=Timings(
            decode_ms=round(document.decode_ms, 2),
            engine_ms=round(max(o.engine_ms for o in outcomes), 2),
            inference_ms=round(sum(o.result.inference_ms for o in outcomes if o.result is not None), 2),
            total_ms=round((time.perf_counter() - document.started) * 1000, 2),
        ),
        note=engine_result.note,
        document_type=document.document_type,
        page_count=document.page_count,
        pages_selected=[p.page.number for p in document.pages],
        failed_pages=[p.page for p in pages if not p.success],
        cache_hit=all(o.cache_hit for o in outcomes),
        repetition=repetition_summary(pages),
    )
    return OCRResponse(
        success=True,
        result=joiner.join(p.result or "" for p in pages if p.success),
        raw_result=joiner.join(p.raw_result or "" for p in pages if p.success),
        boxes=[box for p in pages for box in p.boxes],
        pages=pages if document.document_type == "pdf" else [],
        metadata=metadata,
        **image_outputs(document, pages),
    )


def repetition_summary(pages: list[PageResult]) -> RepetitionSummary | None:
    """What the request's looping pages had in common, for metadata (a single image has no ``pages``)."""
    looped = [p for p in pages if p.repetition is not None]
    if not looped:
        return None
    first = looped[0].repetition
    assert first is not None
    return RepetitionSummary(
        retried=all(p.repetition.retried for p in looped if p.repetition),
        how=first.how,
        trimmed=any(p.repetition.trimmed for p in looped if p.repetition),
        reason=first.reason,
        pages=[p.page for p in looped],
        retried_pages=[p.page for p in looped if p.repetition and p.repetition.retried],
        trimmed_pages=[p.page for p in looped if p.repetition and p.repetition.trimmed],
    )


def image_outputs(document: PreparedDocument, pages: list[PageResult]) -> dict[str, list]:
    """Figure crops and annotated pages, decoded from the page images only when asked for."""
    if not (document.include_images or document.annotate):
        return {}
    figures: list[FigureOut] = []
    annotated: list[AnnotatedPage] = []
    for prepared, page in zip(document.pages, pages):
        if not page.success:
            continue
        image = load_image(prepared.page.image, max_pixels=2**62)
        boxes = [Box(b.label, b.x1, b.y1, b.x2, b.y2) for b in page.boxes]
        if document.include_images:
            figures.extend(
                FigureOut(name=name, page=page.page, label=box.label, x1=box.x1, y1=box.y1, x2=box.x2, y2=box.y2,
                          image_base64=base64.b64encode(data).decode())
                for name, box, data in crop_figures(image, boxes, page.page)
            )
        if document.annotate:
            annotated.append(AnnotatedPage(page=page.page, image_base64=base64.b64encode(annotate(image, boxes)).decode()))
    return {"images": figures, "annotated_images": annotated}


def _readable(task: Task, text: str) -> str:
    """Markdown from any engine in one dialect, so that answers (and evaluation reports) compare fairly."""
    return tidy_markdown(text) if task is Task.MARKDOWN else text


def _sum_or_none(values: list[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None

