"""Service settings, read from ``LOOKALIKE_*`` environment variables (or passed to ``create_app``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    """Limits and switches of the web service.

    Every field can be set from the environment with the ``LOOKALIKE_`` prefix, e.g.
    ``LOOKALIKE_ADMIN_TOKEN``, ``LOOKALIKE_MAX_UPLOAD_BYTES``, ``LOOKALIKE_CORS_ORIGINS=https://a.example,https://b.example``.
    """

    model_config = SettingsConfigDict(env_prefix="LOOKALIKE_", extra="ignore")

    admin_token: SecretStr | None = Field(
        default=None, description="Token for POST/DELETE /api/products; unset: those routes answer 403."
    )
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0, description="Largest image upload or download.")
    max_pixels: int = Field(default=40_000_000, gt=0, description="Largest image, in pixels (width x height).")
    allow_private_urls: bool = Field(
        default=False, description="Let URL queries reach private, loopback and link-local hosts (intranets)."
    )
    url_timeout: float = Field(
        default=15.0,
        gt=0,
        description="Overall time limit for fetching an image URL: name lookup, connect, headers and body.",
    )
    url_workers: int = Field(
        default=8, ge=1, le=256, description="Image URL requests served at a time; more are answered 503."
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="Time allowed for a request body to arrive in full; then 408."
    )
    cors_origins: list[str] | str = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (comma-separated); empty: CORS off.",
    )
    query_flip: bool = Field(
        default=True, description="Also search an uploaded picture's mirror image (a product scores its better view)."
    )
    colour_rank: bool = Field(
        default=True,
        description="Re-rank results by agreement with the query's colour (detected in a picture, or a product's "
        "own colour); a search can still turn it off with colour_rank=false.",
    )
    kind_rank: bool = Field(
        default=True,
        description="Rank a query picture's kind up (the kind head; off: the nearest products' vote); a search can "
        "still choose a kind with 'kind'.",
    )
    collapse_duplicates: bool = Field(
        default=True,
        description="Show products with the very same picture once (the best-ranked, listing the others' ids in "
        "duplicates); a search can still turn it off with collapse=false.",
    )
    default_k: int = Field(default=24, ge=1, description="Results returned when a search gives no k.")
    max_k: int = Field(default=100, ge=1, le=1000, description="Most results one search may ask for.")
    backend: str = Field(default="embedded", pattern="^(embedded|milvus)$", description="Catalogue backend.")
    milvus_uri: str | None = Field(default=None, description="Milvus: a Milvus Lite file or http://host:19530.")
    milvus_token: SecretStr | None = Field(default=None, description="Milvus: user:password or an API key.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_k(self) -> ServiceSettings:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) is larger than max_k ({self.max_k})")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """The configured CORS origins (always a list)."""
        return [self.cors_origins] if isinstance(self.cors_origins, str) else list(self.cors_origins)

    @property
    def admin_token_value(self) -> str | None:
        """The admin token, or ``None`` when admin routes are disabled (unset or empty)."""
        token = self.admin_token.get_secret_value() if self.admin_token is not None else ""
        return token or None
