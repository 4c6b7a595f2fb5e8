"""Settings from the environment (`FICUS_*`) and command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///data/ficus.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = "http://127.0.0.1:8080/fhir"
    default_count: int = 50
    max_count: int = 1000
    max_body_bytes: int = 64 * 1024 * 1024
    validate_writes: bool = True
    explain: bool = False  # `_explain=true` shows a search's SQL and plans (for administrators)
    default_total: str = "estimate"  # `_total` when a search sends none: accurate, estimate, none
    auth: str = "smart"  # FICUS_AUTH: smart (built-in SMART server), external (an OIDC provider's JWTs), off (open!)
    auth_issuer: str = ""  # FICUS_AUTH_ISSUER: public URL of the authorization server (default: base URL minus /fhir)
    # FICUS_CORS_ORIGINS: browser origins allowed to call the API ("*", a comma-separated list, or
    # "" for none). None: "*" when callers need a token (their Bearer header is not a cookie a
    # foreign page could ride on), none when FICUS_AUTH=off leaves the server open.
    cors_origins: str | None = None

    @property
    def allowed_origins(self) -> list[str]:
        """The origins CORS lets in (an empty list: CORS is off)."""
        text = self.cors_origins if self.cors_origins is not None else ("" if self.auth == "off" else "*")
        return [origin.strip().rstrip("/") for origin in text.split(",") if origin.strip()]
    database_pool_size: int = 16  # FICUS_DATABASE_POOL_SIZE: PostgreSQL connections per pool (two pools per process)
    bundle_concurrency: int = 2  # FICUS_BUNDLE_CONCURRENCY: batch/transaction Bundles processed at once per process

    def __post_init__(self) -> None:
        if self.default_total not in ("accurate", "estimate", "none"):
            raise ValueError(f"FICUS_DEFAULT_TOTAL must be accurate, estimate or none, not {self.default_total!r}")
        if self.bundle_concurrency < 1:
            raise ValueError(f"FICUS_BUNDLE_CONCURRENCY must be at least 1, not {self.bundle_concurrency}")
        if self.auth not in ("smart", "external", "off"):
            raise ValueError(f"FICUS_AUTH must be smart, external or off, not {self.auth!r}")

    @classmethod
    def from_environment(cls, host: str = "127.0.0.1", port: int = 8080) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("FICUS_DATABASE_URL", DEFAULT_DATABASE_URL),
            base_url=env.get("FICUS_BASE_URL", f"http://{host}:{port}/fhir").rstrip("/"),
            default_count=int(env.get("FICUS_DEFAULT_COUNT", "50")),
            max_count=int(env.get("FICUS_MAX_COUNT", "1000")),
            max_body_bytes=int(env.get("FICUS_MAX_BODY_BYTES", str(64 * 1024 * 1024))),
            validate_writes=env.get("FICUS_VALIDATE", "1") not in ("0", "false", "no"),
            explain=env.get("FICUS_EXPLAIN", "0") in ("1", "true", "yes"),
            default_total=env.get("FICUS_DEFAULT_TOTAL", "estimate"),
            auth=env.get("FICUS_AUTH", "smart"),
            auth_issuer=env.get("FICUS_AUTH_ISSUER", ""),
            cors_origins=env.get("FICUS_CORS_ORIGINS"),
            database_pool_size=int(env.get("FICUS_DATABASE_POOL_SIZE", "16")),
            bundle_concurrency=int(env.get("FICUS_BUNDLE_CONCURRENCY", "2")),
        )
