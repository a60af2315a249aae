"""The configuration reference, generated from the settings' own field descriptions.

``render_table()`` turns ``Settings.model_fields`` into a markdown table: the environment
variable (the upper-case field name; ``configuration.yaml`` takes the lower-case one), the type
or allowed values, the default, and the field's ``description``. The table lives in
``docs/configuration.md`` between the marker comments ``<!-- settings:start -->`` and
``<!-- settings:end -->``, and ``tests/unit/test_settings_reference.py`` fails when the two differ.

    python -m ocr_runner.settings_reference            # print the table; exit 1 if the file is stale
    python -m ocr_runner.settings_reference --write    # rewrite the table in the file

Without ``--write`` the file is only read: the command prints the freshly generated table and
exits 0 when the committed one equals it, 1 (with a message on stderr) when it is stale.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic.fields import FieldInfo

from .settings import Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
REFERENCE_FILE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}
_BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length >="),
)


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        text = " or ".join(_type_text(arg) for arg in args)
        return f"{text} (optional)" if optional else text
    if origin is list:
        (item,) = typing.get_args(annotation) or (str,)
        return f"comma-separated list of {_type_text(item)}s"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds_text(field: FieldInfo) -> str:
    parts = []
    for constraint in field.metadata:
        for kind, attribute, symbol in _BOUNDS:
            if isinstance(constraint, kind):
                value = getattr(constraint, attribute)
                parts.append("non-empty" if kind is annotated_types.MinLen and value == 1 else f"{symbol} {value}")
    return ", ".join(parts)


def _value_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(map(str, value))}`" if value else "empty"
    if isinstance(value, int) and value >= 1024 * 1024 and value % (1024 * 1024) == 0:
        return f"`{value}` ({value // (1024 * 1024)} MiB)"
    return f"`{value}`"


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_table() -> str:
    """The reference table, one row per settings field, in declaration order."""
    rows = [
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        kind = _type_text(field.annotation)
        bounds = _bounds_text(field)
        if bounds:
            kind = f"{kind}, {bounds}"
        rows.append(
            f"| `{name.upper()}` | {_cell(kind)} | {_cell(_value_text(_default(field)))} "
            f"| {_cell(field.description or '')} |"
        )
    return "\n".join(rows) + "\n"


def _split(text: str, path: Path) -> tuple[str, str, str]:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path}: no {START} ... {END} markers")
    head = text[: start + len(START)]
    return head, text[len(head) : end], text[end:]


def committed_table(path: Path = REFERENCE_FILE) -> str:
    """The table as it stands between the markers in ``path``."""
    _, body, _ = _split(path.read_text(encoding="utf-8"), path)
    return body.strip("\n") + "\n"


def write(path: Path = REFERENCE_FILE) -> bool:
    """Put the fresh table between the markers in ``path``; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    head, _, tail = _split(text, path)
    updated = f"{head}\n{render_table()}{tail}"
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ocr_runner.settings_reference", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--write", action="store_true", help="rewrite the table in the file instead of checking it")
    parser.add_argument("--file", type=Path, default=REFERENCE_FILE, help="markdown file holding the markers")
    args = parser.parse_args(argv)
    if args.write:
        print(f"{args.file}: {'updated' if write(args.file) else 'already current'}")
        return 0
    table = render_table()
    sys.stdout.write(table)
    if committed_table(args.file) != table:
        print(f"{args.file} is stale: run python -m ocr_runner.settings_reference --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
