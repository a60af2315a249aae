"""DeepSeek-OCR serving library: settings, tasks, image input, engines, post-processing.

Nothing here knows about HTTP except the ``ocr_runner.http`` edge package; heavy
dependencies (torch, transformers, rapidocr) are imported lazily by the engines.
"""

__version__ = "0.1.0"
