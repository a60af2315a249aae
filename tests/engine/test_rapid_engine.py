"""The embedded CPU engine reads real text from rendered pages."""

import pytest

from ocr_runner.engines import EnginePage, create_engine
from ocr_runner.engines.rapid import RapidOcrEngine
from ocr_runner.grounding import extract_boxes, strip_grounding
from ocr_runner.settings import load_settings
from ocr_runner.tasks import Task, build_prompt
from tests.helpers import encode, render_page

pytestmark = pytest.mark.engine
LINES = ["Quarterly report 2026", "Invoice total 42.50 EUR", "Thank you for your order"]


@pytest.fixture(scope="module")
def engine() -> RapidOcrEngine:
    engine = create_engine(load_settings(engine="rapidocr"))
    assert isinstance(engine, RapidOcrEngine)
    return engine


@pytest.fixture(scope="module")
def page() -> bytes:
    return encode(render_page(LINES))


def run(engine, page, task, **kwargs):
    [result] = engine.run_batch(
        [EnginePage(image=page, task=task, prompt=build_prompt(task, text_to_locate=kwargs.get("locate_text")), **kwargs)]
    )
    assert result.error is None
    return result


def test_reads_the_lines_in_order(engine, page):
    text = run(engine, page, Task.OCR).text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines == LINES


def test_markdown_is_honest_about_being_approximate(engine, page):
    result = run(engine, page, Task.MARKDOWN)
    assert "Invoice total 42.50 EUR" in result.text and "approximated" in (result.note or "")


def test_locate_finds_the_words(engine, page):
    result = run(engine, page, Task.LOCATE, locate_text="total 42.50")
    [box] = extract_boxes(result.text, 900, 400)
    # "total 42.50" sits on the second line (y 95..130) after "Invoice " (x > 30).
    assert 100 < box.x1 < box.x2 < 450 and 85 < box.y1 < box.y2 < 145


def test_locate_with_no_match_returns_nothing(engine, page):
    assert run(engine, page, Task.LOCATE, locate_text="elephant").text == ""


def test_blank_page_gives_empty_text(engine):
    assert run(engine, encode(render_page([])), Task.OCR).text == ""


def test_corrupt_item_fails_alone(engine, page):
    results = engine.run_batch(
        [EnginePage(image=b"junk", task=Task.OCR, prompt="<image>\nFree OCR."),
         EnginePage(image=page, task=Task.OCR, prompt="<image>\nFree OCR.")]
    )
    assert results[0].error_code == "invalid_input" and results[1].error is None


def _read_document(engine, data: bytes, task: Task, **options) -> tuple[str, str | None]:
    from ocr_runner.options import LocateOptions
    from ocr_runner.pipeline import DocumentRequest, PageOutcome, assemble, prepare

    prepared = prepare(engine.settings, DocumentRequest(task=task, data=data, options=LocateOptions(**options)))
    results = engine.run_batch([p.engine_page for p in prepared.pages])
    response = assemble(prepared, [PageOutcome(r, None, 0.0) for r in results])
    return response.result or "", response.metadata.note


def test_pdf_text_layer_is_the_fast_path_and_force_ocr_switches_it_off(engine):
    from tests.helpers import make_text_pdf

    pdf = make_text_pdf(["Quarterly report 2026", "Invoice total 42.50 EUR"])
    text, note = _read_document(engine, pdf, Task.MARKDOWN)
    assert "Quarterly report 2026" in text and "Invoice total 42.50 EUR" in text
    assert "text layer" in (note or "")
    text, note = _read_document(engine, pdf, Task.OCR, force_ocr=True)
    assert "Invoice total 42.50 EUR" in text and "text layer" not in (note or "")


def test_a_page_turned_by_90_degrees_is_read_upright(engine):
    turned = render_page(LINES).rotate(90, expand=True)
    text = run(engine, encode(turned), Task.OCR).text
    assert [line.strip() for line in text.splitlines() if line.strip()] == LINES


def test_an_upside_down_page_is_read_upright_and_in_order(engine):
    text = run(engine, encode(render_page(LINES).rotate(180)), Task.OCR).text
    assert [line.strip() for line in text.splitlines() if line.strip()] == LINES


def test_reading_does_not_depend_on_earlier_requests(engine, page):
    first = run(engine, page, Task.OCR).text
    run(engine, encode(render_page(LINES).rotate(90, expand=True)), Task.OCR)
    run(engine, page, Task.LOCATE, locate_text="total")
    assert run(engine, page, Task.OCR).text == first


SHARED_EVAL = __import__("pathlib").Path(__file__).resolve().parents[2].parent / "shared" / "eval"
KANNADA = SHARED_EVAL / "kannada_mile" / "Kan_035_P029.png"


@pytest.mark.skipif(not KANNADA.exists(), reason="../shared/eval is not beside this checkout")
def test_a_script_the_recogniser_cannot_read_goes_to_tesseract(engine):
    """A strip of a Kannada book page: RapidOCR has no Kannada model; script detection sends it to Tesseract,
    which reads it the same when it came turned by a quarter."""
    from PIL import Image
    from rapidfuzz.distance import Levenshtein

    from ocr_runner.engines.tesseract import Tesseract

    if Tesseract().model_for("Kannada") != "Kannada+kan":
        pytest.skip("tesseract-ocr-script-knda or -kan is not installed (.ci/run installs them)")
    with Image.open(KANNADA) as full:
        strip = full.convert("RGB").crop((0, 0, full.width, full.height // 5))
    result = run(engine, encode(strip), Task.OCR)
    assert result.source == "tesseract:Kannada+kan"
    kannada = sum("\u0c80" <= ch <= "\u0cff" for ch in result.text)
    assert kannada > 0.6 * sum(ch.isalpha() for ch in result.text), result.text
    turned = run(engine, encode(strip.rotate(90, expand=True)), Task.OCR)
    assert turned.source == result.source
    assert Levenshtein.normalized_distance(turned.text, result.text) < 0.05, turned.text


BLACKLETTER = SHARED_EVAL / "nzz" / "nzz_19330203_0_0_a1_p1_1.jpg"


@pytest.mark.skipif(not BLACKLETTER.exists(), reason="../shared/eval is not beside this checkout")
def test_a_blackletter_column_goes_to_tesseracts_fraktur_model_at_its_own_resolution(engine):
    """Two columns of a 285 dpi Fraktur newspaper scan, kept at their resolution: script detection on the
    unscaled glyphs names Fraktur, and Tesseract reads them with the file's resolution."""
    from PIL import Image

    from ocr_runner.engines.tesseract import Tesseract

    if Tesseract().model_for("Fraktur") != "Fraktur+frk":
        pytest.skip("tesseract-ocr-script-frak or -frk is not installed (.ci/run installs them)")
    with Image.open(BLACKLETTER) as full:
        strip = full.convert("RGB").crop((0, full.height // 4, full.width // 2, full.height // 2))
    buffer = __import__("io").BytesIO()
    strip.save(buffer, format="PNG", dpi=(285, 285))
    resolutions = []
    real_lines = engine._tesseract.lines

    def lines(image, model, dpi, *args):
        resolutions.append(dpi)
        return real_lines(image, model, dpi, *args)

    engine._tesseract.lines = lines
    try:
        result = run(engine, buffer.getvalue(), Task.MARKDOWN)
    finally:
        del engine._tesseract.lines
    assert result.source == "tesseract:Fraktur+frk" and resolutions == [285]
    words = strip_grounding(result.text).split()
    assert len(words) > 150 and sum(w.strip(".,;:").isalpha() for w in words) > 0.8 * len(words)


POINTED_HEBREW = SHARED_EVAL / "hebrew" / "hebrew-nikud-genesis-1-2.png"


@pytest.mark.skipif(not POINTED_HEBREW.exists(), reason="../shared/eval is not beside this checkout")
def test_lines_tesseracts_layout_analysis_misses_are_read_one_by_one(engine):
    """Fully pointed Hebrew: the vowel points fill the space between lines, and Tesseract's own layout analysis
    finds a handful of its fifteen lines. The lines RapidOCR's detector found and Tesseract left out are read
    one by one, so the text of every line comes back."""
    from PIL import Image

    from ocr_runner.engines.tesseract import Tesseract

    if Tesseract().model_for("Hebrew") is None:
        pytest.skip("tesseract-ocr-script-hebr is not installed (.ci/run installs it)")
    with Image.open(POINTED_HEBREW) as full:
        strip = full.convert("RGB").crop((0, 0, full.width, 1230))  # the first 15 lines
    result = run(engine, encode(strip), Task.OCR)
    assert result.source.startswith("tesseract:Hebrew")
    lines = [ln for ln in result.text.splitlines() if sum("\u05d0" <= ch <= "\u05ea" for ch in ln) > 20]
    assert len(lines) >= 14, result.text


def test_a_script_is_read_with_its_model_and_its_principal_languages_where_installed():
    from ocr_runner.engines.tesseract import Tesseract

    tesseract = Tesseract()
    tesseract.models = {"osd", "Fraktur", "frk", "Hebrew", "ara"}
    assert tesseract.model_for("Fraktur") == "Fraktur+frk"
    assert tesseract.model_for("Hebrew") == "Hebrew"  # heb not installed: the script model alone
    assert tesseract.model_for("Arabic") is None  # a language model without its script's model is not used
    assert tesseract.model_for("Latin") is None and tesseract.model_for(None) is None


def test_markdown_blocks_have_labelled_boxes(engine, page):
    result = run(engine, page, Task.MARKDOWN)
    assert result.source == "ocr"
    boxes = extract_boxes(result.text, 900, 400)
    assert boxes and all(b.label in {"text", "title"} for b in boxes)
    assert all(b.x2 > b.x1 and b.y2 > b.y1 for b in boxes)


def test_onnxruntime_reads_what_openvino_reads(page):
    """The two inference libraries run the same ONNX models: the fallback gives the same answer."""
    texts = {}
    for backend in ("openvino", "onnxruntime"):
        engine = create_engine(load_settings(engine="rapidocr", rapidocr_backend=backend, rapidocr_workers=1))
        assert engine._readers.backend == backend
        texts[backend] = run(engine, page, Task.OCR).text
    assert texts["openvino"] == texts["onnxruntime"] == "\n".join(LINES)


def test_pages_of_a_batch_are_read_side_by_side_one_per_reader(page):
    """Two readers: two pages are in recognition at the same moment, each with its own reader."""
    import threading

    engine = create_engine(load_settings(engine="rapidocr", rapidocr_workers=2))
    assert engine._readers.size == 2
    both_in = threading.Barrier(2, timeout=30)  # broken (and the test failed) unless both readers run at once
    used = []
    for reader in engine._readers.readers:

        def finding(pixels, _real=reader.find, _reader=reader):
            used.append(id(_reader))
            both_in.wait()
            return _real(pixels)

        reader.find = finding
    results = engine.run_batch([EnginePage(image=page, task=Task.OCR, prompt=build_prompt(Task.OCR))] * 2)
    assert [r.text for r in results] == ["\n".join(LINES)] * 2
    assert len(set(used)) == 2



def test_the_detector_is_compiled_afresh_after_a_bounded_number_of_page_sizes(page):
    """OpenVINO keeps memory for every input shape it has run: after DET_SHAPES page sizes the detector is
    compiled afresh, and it finds the same lines as before."""
    import io

    import numpy as np
    from PIL import Image

    from ocr_runner.engines.rapid_models import DET_SHAPES, BoundedDetection
    from ocr_runner.engines.rapid_readers import Reader, backend

    if backend("auto") != "openvino":
        pytest.skip("OpenVINO is not installed")
    reader = Reader(load_settings(engine="rapidocr"), "openvino")
    detector = reader.ocr._load_det_model().session
    assert isinstance(detector, BoundedDetection)
    pixels = np.asarray(Image.open(io.BytesIO(page)).convert("RGB"))
    before = reader.find(pixels).boxes()
    first_request = detector.session.session
    for k in range(DET_SHAPES):
        reader.find(np.full((736, 736 + 64 * (k + 1), 3), 255, dtype=np.uint8))
    assert detector.session.session is not first_request and len(detector.shapes) <= DET_SHAPES
    assert reader.find(pixels).boxes() == before and len(before) == len(LINES)


def test_the_recogniser_pads_lines_and_its_alphabetic_head_reads_latin_as_the_full_one(page):
    """Lines run padded to a multiple of REC_STEP columns, and the frames of the padding are cut; the alphabetic
    head (CJK rows of the output layer left out) reads a Latin line as the full head does."""
    import io

    import numpy as np
    from PIL import Image

    from ocr_runner.engines.rapid_models import ALL, ALPHABETIC, REC_STEP, REC_STRIDE, Recognition
    from ocr_runner.engines.rapid_readers import Reader, backend

    if backend("auto") != "openvino":
        pytest.skip("OpenVINO is not installed")
    reader = Reader(load_settings(engine="rapidocr"), "openvino")
    recognition = reader.ocr._load_rec_model().session
    assert isinstance(recognition, Recognition)
    characters = reader.ocr._load_rec_model().postprocess_op.character
    assert 0 < len(recognition.kept) < len(characters) / 4 and recognition.kept[0] == 0
    line = np.ones((1, 3, 48, 100), dtype=np.float32)
    assert 100 % REC_STEP and recognition(line).shape == (1, -(-100 // REC_STRIDE), 2)  # (probability, class)
    recognition.head = ALPHABETIC
    best = recognition(line)
    assert best.shape == (1, 13, 2) and (best[..., 1] < len(recognition.kept)).all() and (best[..., 0] <= 1).all()
    found = reader.find(np.asarray(Image.open(io.BytesIO(page)).convert("RGB")))
    assert found is not None and len(found) == len(LINES)
    full = reader.recognise_crops(found.crops, ALL)
    alphabetic = reader.recognise_crops(found.crops, ALPHABETIC)
    assert full[0] == alphabetic[0] == LINES
    assert all(a >= f - 1e-3 for a, f in zip(alphabetic[1], full[1], strict=True))  # fewer classes share the mass


CJK_FONT = __import__("pathlib").Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def test_a_chinese_line_on_an_english_page_keeps_its_characters(engine):
    """The page's longest lines are English, so the rest is read with the alphabetic head; the Chinese line it
    reads unsure is read again with every character."""
    from PIL import ImageDraw, ImageFont

    if not CJK_FONT.exists():
        pytest.fail(f"{CJK_FONT} is missing (.ci/run installs fonts-wqy-microhei)")
    english = [f"Line {n} of the quarterly report for the northern region" for n in range(1, 11)]
    image = render_page(english, size=(1400, 900), font_size=30)
    chinese = ImageFont.truetype(str(CJK_FONT), 30)
    ImageDraw.Draw(image).text((30, 30 + 11 * 54), "北京市海淀区", fill="black", font=chinese)
    text = run(engine, encode(image), Task.OCR).text
    assert "北京市海淀区" in text
    assert all(line in text for line in english)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_lines_turned_with_the_page_are_where_the_detector_finds_them_on_the_turned_page(turns):
    """A page turned upright is not detected again: its boxes are turned with it and the lines cut afresh."""
    import numpy as np

    from ocr_runner.engines.rapid_readers import Reader, backend

    reader = Reader(load_settings(engine="rapidocr"), backend("auto"))
    pixels = np.asarray(render_page(LINES, size=(1000, 700)).rotate(90, expand=True))
    turned = reader.turned(reader.find(pixels), turns)
    detected = reader.find(np.ascontiguousarray(np.rot90(pixels, turns)))
    assert turned.original.shape == detected.original.shape and len(turned) == len(detected) == len(LINES)
    for mine in turned.boxes():  # each turned box lies within a few pixels of one the detector found
        assert min(max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) for theirs in detected.boxes()) <= 6
    if turns == 3:  # upright: the lines cut from the turned page read as the page says
        reader.recognise(turned, range(len(turned)))
        assert sorted(reader.output(turned).txts) == sorted(LINES)


def test_a_strip_of_one_line_standing_on_end_is_read_whole(engine):
    """RapidOCR pads a wide strip before detecting it and a tall one not: the turned strip is detected afresh."""
    line = "A very wide strip of text that runs on and on across the page"
    strip = render_page([line], size=(3000, 60), font_size=30).rotate(90, expand=True)
    assert run(engine, encode(strip), Task.OCR).text == line
