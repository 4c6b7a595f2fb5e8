"""SMART on FHIR authorization: a built-in authorization server, external tokens, and the policy.

`create_authenticator(AuthSettings)` gives what `create_app` mounts for `FICUS_AUTH=smart`
(`SmartAuth`: discovery, authorize/login/consent pages, token, introspection, revocation, JWKS)
or `external` (`ExternalAuth`: JWTs of another OpenID provider); `SmartPolicy` enforces the
scopes and the patient context at the policy decision point; `AuthAdmin` and `ficus auth ...`
administer clients, users, keys and EHR launches.
"""

from ficus.auth.admin import AdminError, AuthAdmin
from ficus.auth.errors import AuthError
from ficus.auth.policy import SearchRestriction, SmartPolicy
from ficus.auth.service import ExternalAuth, SmartAuth, create_authenticator
from ficus.auth.settings import AuthSettings

__all__ = [
    "AdminError", "AuthAdmin", "AuthError", "AuthSettings", "ExternalAuth", "SearchRestriction", "SmartAuth",
    "SmartPolicy", "create_authenticator",
]
