"""Command-line client, compatible with the original server's ``test_client.py`` options.

    deepseek-ocr --image page.png --task markdown
    deepseek-ocr --image report.pdf --task all --output results/ --server http://gpu-host:8000

PDFs go through the async job API, with a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ENDPOINTS = {"ocr": "/ocr", "markdown": "/document-to-markdown", "figure": "/parse-figure", "locate": "/locate-text"}
SUFFIX = {"ocr": "txt", "markdown": "md", "figure": "md", "locate": "txt"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deepseek-ocr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, nargs="+", type=Path, help="image or PDF files")
    parser.add_argument("--task", default="ocr", choices=[*ENDPOINTS, "all"])
    parser.add_argument("--text", help="text to locate (locate task; with 'all', adds locate)")
    parser.add_argument("--server", default="http://localhost:8000")
    parser.add_argument("--pages", help="PDF page range, e.g. 1-3,5")
    parser.add_argument("--base-size", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--crop-mode", choices=["true", "false"])
    parser.add_argument("--api-key", help="sent as a Bearer token")
    parser.add_argument("--output", type=Path, help="file (one result) or folder (several) to write results to")
    parser.add_argument("--json", action="store_true", help="the full responses, one JSON object per line")
    parser.add_argument("--timeout", type=float, default=600)
    return parser.parse_args(argv)


def request_body(args: argparse.Namespace, data: bytes, task: str) -> dict[str, Any]:
    body: dict[str, Any] = {"image_base64": base64.b64encode(data).decode()}
    for key in ("pages", "base_size", "image_size"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.crop_mode is not None:
        body["crop_mode"] = args.crop_mode == "true"
    if task == "locate":
        body["text_to_locate"] = args.text or ""
    return body


def progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} pages")
    sys.stderr.flush()


def run_pdf(client: httpx.Client, body: dict[str, Any], task: str, label: str) -> httpx.Response:
    submitted = client.post("/jobs", json={**body, "task": task})
    if submitted.status_code != 202:
        return submitted
    job = submitted.json()
    while job["status"] in ("queued", "running"):
        progress(job["progress"]["pages_done"], job["progress"]["pages_total"], label)
        time.sleep(0.5)
        job = client.get(f"/jobs/{job['job_id']}").json()
    progress(job["progress"]["pages_done"], job["progress"]["pages_total"], label)
    sys.stderr.write("\n")
    return client.get(job["result_url"])


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
    tasks = [*ENDPOINTS][:3] + (["locate"] if args.text else []) if args.task == "all" else [args.task]
    if "locate" in tasks and not args.text:
        print("--text is required for the locate task", file=sys.stderr)
        return 2
    runs = [(path, task) for path in args.image for task in tasks]
    to_folder = args.output is not None and (len(runs) > 1 or args.output.is_dir())
    if to_folder:
        args.output.mkdir(parents=True, exist_ok=True)
    headers = {"authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    failures = 0
    with httpx.Client(base_url=args.server, timeout=args.timeout, headers=headers) as client:
        for path, task in runs:
            try:
                data = path.read_bytes()
            except OSError as exc:
                print(f"{path}: {exc.strerror}", file=sys.stderr)
                failures += 1
                continue
            body = request_body(args, data, task)
            label = f"{path.name} {task}"
            if data[:5] == b"%PDF-":
                response = run_pdf(client, body, task, label)
            else:
                response = client.post(ENDPOINTS[task], json=body)
            try:
                answer = response.json()
            except ValueError:
                answer = {"success": False, "error": response.text[:500]}
            if response.status_code != 200 or not answer.get("success"):
                failures += 1
                print(f"{label}: HTTP {response.status_code}: {answer.get('error')}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"file": str(path), "task": task, **answer}))
                continue
            output = json.dumps({"file": str(path), "task": task, **answer}) if args.json else answer.get("result", "")
            if note := repetition_note(answer):
                print(f"{label}: {note}", file=sys.stderr)
            if args.output is None:
                print(output if args.json or len(runs) == 1 else f"=== {label} ===\n{output}")
            else:
                target = args.output / f"{path.stem}.{task}.{'json' if args.json else SUFFIX[task]}" if to_folder else args.output
                target.write_text(output + "\n")
                print(f"{label}: wrote {target}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
