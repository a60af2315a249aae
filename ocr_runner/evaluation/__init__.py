"""Accuracy evaluation: score engines on documents with ground truth (``python -m ocr_runner.evaluation``).

Pure scoring code (``normalize``, ``metrics``) has no heavy imports; runners import their
engines lazily.
"""
