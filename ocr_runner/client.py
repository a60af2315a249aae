"""Command-line client, compatible with the original server's ``test_client.py`` options.

    deepseek-ocr --image page.png --task markdown
    deepseek-ocr --image report.pdf --task all --output results/ --server http://gpu-host:8000
    deepseek-ocr --image https://example.com/scan.png --task describe --annotate boxes/

PDFs go through the async job API, with a progress bar on stderr. Exit status: 0 when every
document was read, 1 when one failed, 2 for bad arguments, 3 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from .sdk import OCRClient, OCRClientError, ServerUnreachable

TASKS = ("ocr", "markdown", "figure", "locate", "describe")
SUFFIX = {"ocr": "txt", "markdown": "md", "figure": "md", "locate": "txt", "describe": "txt"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deepseek-ocr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, nargs="+", help="image or PDF files, or http(s) URLs")
    parser.add_argument("--task", default="ocr", choices=[*TASKS, "all"], help="'all': ocr, markdown, figure "
                        "(and locate with --text)")
    parser.add_argument("--text", help="text to locate (locate task; with 'all', adds locate)")
    parser.add_argument("--server", default="http://localhost:8000")
    parser.add_argument("--pages", help="PDF page range, e.g. 1-3,5")
    parser.add_argument("--base-size", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--crop-mode", choices=["true", "false"])
    parser.add_argument("--force-ocr", action="store_true", help="PDFs: recognise pages that have a text layer too")
    parser.add_argument("--max-new-tokens", type=int, help="cap on generated tokens a page")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write each page with its boxes drawn to DIR")
    parser.add_argument("--api-key", help="sent as a Bearer token")
    parser.add_argument("--output", type=Path, help="file (one result) or folder (several) to write results to")
    parser.add_argument("--json", action="store_true", help="the full responses, one JSON object per line")
    parser.add_argument("--timeout", type=float, default=600)
    return parser.parse_args(argv)


def options(args: argparse.Namespace, task: str) -> dict[str, Any]:
    chosen: dict[str, Any] = {key: getattr(args, key) for key in ("pages", "base_size", "image_size", "max_new_tokens")}
    if args.crop_mode is not None:
        chosen["crop_mode"] = args.crop_mode == "true"
    if args.force_ocr:
        chosen["force_ocr"] = True
    if args.annotate is not None:
        chosen["annotate"] = True
    if task == "locate":
        chosen["text_to_locate"] = args.text or ""
    return chosen


def progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} pages")
    sys.stderr.flush()


def read(client: OCRClient, document: Any, task: str, chosen: dict[str, Any], label: str) -> dict[str, Any]:
    is_pdf = isinstance(document, bytes) and document[:5] == b"%PDF-"
    if not is_pdf:
        return client.read(document, task, **chosen).model_dump()
    job = client.submit_job(document, task, **chosen)
    answer = client.wait(job.job_id, on_progress=lambda done, total: progress(done, total, label))
    sys.stderr.write("\n")
    return answer.model_dump()


def repetition_note(answer: dict[str, Any]) -> str | None:
    """One line for the pages that looped (metadata.repetition), or None."""
    loops = (answer.get("metadata") or {}).get("repetition")
    if not loops:
        return None
    pages = ", ".join(map(str, loops.get("pages", [])))
    done = "retried (" + loops["how"] + ")" if loops.get("retried") and loops.get("how") else "not retried"
    trimmed = loops.get("trimmed_pages") or []
    end = (f"; repeated tail cut on page {', '.join(map(str, trimmed))}" if trimmed
           else "; the retry read it without looping")
    return f"repetition loop on page {pages}: {loops.get('reason')}; {done}{end}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tasks = ["ocr", "markdown", "figure"] + (["locate"] if args.text else []) if args.task == "all" else [args.task]
    if "locate" in tasks and not args.text:
        print("--text is required for the locate task", file=sys.stderr)
        return 2
    runs = [(source, task) for source in args.image for task in tasks]
    to_folder = args.output is not None and (len(runs) > 1 or args.output.is_dir())
    for folder in (args.output if to_folder else None, args.annotate):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    failures = 0
    with OCRClient(args.server, api_key=args.api_key, timeout=args.timeout) as client:
        for source, task in runs:
            is_url = source.startswith(("http://", "https://"))
            path = Path(source.rsplit("/", 1)[-1] or "document") if is_url else Path(source)
            try:
                document: Any = source if is_url else path.read_bytes()
            except OSError as exc:
                print(f"{source}: {exc.strerror}", file=sys.stderr)
                failures += 1
                continue
            label = f"{path.name} {task}"
            try:
                answer = read(client, document, task, options(args, task), label)
            except ServerUnreachable as exc:
                print(f"deepseek-ocr: cannot reach the server at {args.server} ({exc})", file=sys.stderr)
                return 3
            except OCRClientError as exc:
                failures += 1
                print(f"{label}: HTTP {exc.status}: {exc.message}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"file": source, "task": task, **exc.body}))
                continue
            if note := repetition_note(answer):
                print(f"{label}: {note}", file=sys.stderr)
            write(args, answer, source, path, task, label, len(runs), to_folder)
    return 1 if failures else 0


def write(args: argparse.Namespace, answer: dict[str, Any], source: str, path: Path, task: str, label: str,
          runs: int, to_folder: bool) -> None:
    output = json.dumps({"file": source, "task": task, **answer}) if args.json else answer.get("result") or ""
    if args.output is None:
        print(output if args.json or runs == 1 else f"=== {label} ===\n{output}")
    else:
        target = args.output / f"{path.stem}.{task}.{'json' if args.json else SUFFIX[task]}" if to_folder else args.output
        target.write_text(output + "\n")
        print(f"{label}: wrote {target}", file=sys.stderr)
    for page in answer.get("annotated_images") or []:
        target = args.annotate / f"{path.stem}.{task}.page{page['page']}.png"
        target.write_bytes(base64.b64decode(page["image_base64"]))
        print(f"{label}: wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
