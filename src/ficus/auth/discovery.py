"""What the authorization server announces: SMART configuration, OpenID configuration, and the
CapabilityStatement's `rest.security` - each listing only what is actually implemented."""

from __future__ import annotations

from ficus.auth.server import ASSERTION_ALGORITHMS
from ficus.auth.settings import AuthSettings, default_issuer

SCOPES_SUPPORTED = [
    "openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access", "online_access",
    "patient/*.cruds", "patient/*.rs", "user/*.cruds", "user/*.rs", "system/*.cruds", "system/*.rs",
    "patient/*.read", "patient/*.write", "user/*.read", "user/*.write", "system/*.read", "system/*.write",
]
CAPABILITIES = [
    "launch-ehr", "launch-standalone", "authorize-post",
    "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
    "context-ehr-patient", "context-ehr-encounter", "context-standalone-patient", "context-banner",
    "sso-openid-connect", "permission-offline", "permission-online", "permission-patient", "permission-user",
    "permission-v1", "permission-v2",
]
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def smart_configuration(settings: AuthSettings) -> dict:
    """`/.well-known/smart-configuration` (SMART App Launch 2.x)."""
    return {
        "issuer": settings.issuer,
        "jwks_uri": settings.endpoint("jwks"),
        "authorization_endpoint": settings.endpoint("authorize"),
        "token_endpoint": settings.endpoint("token"),
        "introspection_endpoint": settings.endpoint("introspect"),
        "revocation_endpoint": settings.endpoint("revoke"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": SCOPES_SUPPORTED,
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(settings: AuthSettings) -> dict:
    """`/.well-known/openid-configuration` (OpenID Connect Discovery 1.0)."""
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": settings.endpoint("authorize"),
        "token_endpoint": settings.endpoint("token"),
        "jwks_uri": settings.endpoint("jwks"),
        "introspection_endpoint": settings.endpoint("introspect"),
        "revocation_endpoint": settings.endpoint("revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": ["openid", "fhirUser", "profile", "offline_access", "online_access"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser", "name"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
    }


def capability_security(base_url: str, mode: str, issuer: str = "") -> dict | None:
    """`CapabilityStatement.rest.security` for the configured mode (None when auth is off)."""
    if mode == "off":
        return None
    security: dict = {
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }],
            "text": "OAuth2 using SMART-on-FHIR profile (see https://hl7.org/fhir/smart-app-launch/)",
        }],
    }
    if mode == "smart":
        root = (issuer or default_issuer(base_url)).rstrip("/")
        security["extension"] = [{
            "url": OAUTH_URIS,
            "extension": [
                {"url": name, "valueUri": f"{root}/auth/{path}"}
                for name, path in (("authorize", "authorize"), ("token", "token"), ("revoke", "revoke"), ("introspect", "introspect"))
            ],
        }]
        security["description"] = f"SMART App Launch 2.x; discovery at {base_url.rstrip('/')}/.well-known/smart-configuration"
    else:
        security["description"] = "Access tokens of an external OpenID Connect provider (JWT, verified with its JWKS)"
    return security
