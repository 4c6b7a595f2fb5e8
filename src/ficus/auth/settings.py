"""Configuration of the authorization layer (`FICUS_AUTH` and the `FICUS_AUTH_*` variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MODES = ("smart", "external", "off")


@dataclass(frozen=True)
class AuthSettings:
    """How callers are authenticated and how long credentials live.

    `mode`: `smart` runs the built-in SMART authorization server, `external` accepts JWT access
    tokens of another OpenID Connect provider (verified with its JWKS), `off` lets everyone do
    everything (development only). `base_url` is the FHIR base URL, the `aud` every
    authorization request must name; `issuer` is where the authorization server lives (its
    endpoints are `{issuer}/auth/...`), by default the base URL without its `/fhir` path.
    """

    base_url: str
    mode: str = "smart"
    issuer: str = ""
    access_token_seconds: int = 3600
    offline_refresh_seconds: int = 90 * 24 * 3600
    online_refresh_seconds: int = 12 * 3600
    code_seconds: int = 60
    request_seconds: int = 15 * 60
    launch_seconds: int = 3600
    id_token_seconds: int = 3600
    assertion_max_seconds: int = 300  # SMART Backend Services: a client assertion's exp <= now + 5 min
    key_retention_seconds: int = 7 * 24 * 3600
    external_issuer: str | None = None
    external_jwks_url: str | None = None
    external_audience: str | None = None  # default: base_url
    external_scope_claim: str = "scope"
    external_patient_claim: str = "patient"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"FICUS_AUTH must be smart, external or off, not {self.mode!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not self.issuer:
            object.__setattr__(self, "issuer", default_issuer(self.base_url))
        object.__setattr__(self, "issuer", self.issuer.rstrip("/"))
        if self.mode == "external" and not (self.external_issuer and self.external_jwks_url):
            raise ValueError("FICUS_AUTH=external needs FICUS_AUTH_EXTERNAL_ISSUER and FICUS_AUTH_EXTERNAL_JWKS_URL")

    @property
    def audience(self) -> str:
        """The `aud` accepted for access tokens of an external provider."""
        return (self.external_audience or self.base_url).rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    def endpoint(self, name: str) -> str:
        """The absolute URL of one of the authorization server's endpoints (`token`, ...)."""
        return f"{self.issuer}/auth/{name}"

    @classmethod
    def from_environment(cls, base_url: str, mode: str, issuer: str = "", env: Mapping[str, str] | None = None) -> AuthSettings:
        """`FICUS_AUTH_*` settings; `issuer` (Settings.auth_issuer) wins over FICUS_AUTH_ISSUER."""
        env = os.environ if env is None else env

        def seconds(name: str, default: int) -> int:
            return int(env.get(name, str(default)))

        return cls(
            base_url=base_url,
            mode=mode,
            issuer=issuer or env.get("FICUS_AUTH_ISSUER", ""),
            access_token_seconds=seconds("FICUS_AUTH_ACCESS_TOKEN_SECONDS", 3600),
            offline_refresh_seconds=seconds("FICUS_AUTH_OFFLINE_REFRESH_SECONDS", 90 * 24 * 3600),
            online_refresh_seconds=seconds("FICUS_AUTH_ONLINE_REFRESH_SECONDS", 12 * 3600),
            key_retention_seconds=seconds("FICUS_AUTH_KEY_RETENTION_SECONDS", 7 * 24 * 3600),
            external_issuer=env.get("FICUS_AUTH_EXTERNAL_ISSUER"),
            external_jwks_url=env.get("FICUS_AUTH_EXTERNAL_JWKS_URL"),
            external_audience=env.get("FICUS_AUTH_EXTERNAL_AUDIENCE"),
            external_scope_claim=env.get("FICUS_AUTH_EXTERNAL_SCOPE_CLAIM", "scope"),
            external_patient_claim=env.get("FICUS_AUTH_EXTERNAL_PATIENT_CLAIM", "patient"),
        )


def default_issuer(base_url: str) -> str:
    """`http://host:8080/fhir` -> `http://host:8080`: the origin plus any path before `/fhir`."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path
    path = path.removesuffix("/fhir")
    return f"{parts.scheme}://{parts.netloc}{path}"
