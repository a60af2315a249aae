"""Structured logs: with LOG_FORMAT=json every line is one JSON object carrying the request id.

BentoML configures its server logging before our service starts; ``configure_logging`` then
swaps the formatter on BentoML's handlers (keeping its trace filter) and adds the id that
``RequestId`` put in a context variable, so a line can be matched to the ``X-Request-ID``
the client saw.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Put the current request's id on the record (BentoML's own filter leaves an internal id)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None:
            record.request_id = request_id
        return True


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        timestamp=False,
    )


def configure_logging(log_format: str, level: str) -> None:
    """Our loggers at ``level``; with ``json``, every handler BentoML installed writes JSON lines."""
    logging.getLogger("ocr_runner").setLevel(level.upper())
    if log_format != "json":
        return
    formatter = json_formatter()
    handlers = {*logging.getLogger().handlers, *logging.getLogger("bentoml").handlers}
    for handler in handlers:
        handler.setFormatter(formatter)
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
