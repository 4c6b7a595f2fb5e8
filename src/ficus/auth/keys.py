"""The authorization server's signing keys: stored in the database, published as a JWKS, rotatable.

Every process signs with the newest unretired key and publishes all keys that are not pruned,
so a rotation in one process (`ficus auth keys rotate`) is seen by all at their next request,
and tokens signed before it keep verifying until the retired key is pruned.
"""

from __future__ import annotations

from joserfc.jwk import RSAKey

from ficus.auth.store import AuthStore, SigningKey
from ficus.fhirtime import now_micros

ALGORITHM = "RS256"
KEY_BITS = 2048


class SigningKeys:
    def __init__(self, store: AuthStore) -> None:
        self.store = store

    def current(self) -> tuple[SigningKey, RSAKey]:
        """The key to sign with now (made on first use)."""
        for stored in self.store.signing_keys():
            if stored.retired is None:
                return stored, RSAKey.import_key(stored.private_jwk)
        self.store.add_key(_new_key(), retire_others=False)
        return self.current()

    def rotate(self) -> SigningKey:
        """Make a new signing key; the previous ones stay published until pruned."""
        key = _new_key()
        self.store.add_key(key, retire_others=True)
        return key

    def prune(self, retention_seconds: int) -> list[str]:
        """Forget keys retired more than `retention_seconds` ago; returns their ids."""
        return self.store.remove_keys_retired_before(now_micros() - retention_seconds * 1_000_000)

    def jwks(self) -> dict:
        """The public JWKS: every stored key, signing one first."""
        stored = self.store.signing_keys()
        if not any(key.retired is None for key in stored):
            self.current()
            stored = self.store.signing_keys()
        stored.sort(key=lambda key: key.retired is not None)
        return {"keys": [RSAKey.import_key(key.private_jwk).as_dict(private=False) for key in stored]}


def _new_key() -> SigningKey:
    key = RSAKey.generate_key(KEY_BITS, parameters={"alg": ALGORITHM, "use": "sig"}, auto_kid=True)
    return SigningKey(key.kid or "", ALGORITHM, key.as_dict(private=True), now_micros(), None)
