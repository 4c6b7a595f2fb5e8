"""`ficus auth ...` and the Python administration API: clients, users, keys, launches."""

from __future__ import annotations

import json

import pytest
from joserfc.jwk import RSAKey
from typer.testing import CliRunner

from ficus.auth.admin import AdminError, AuthAdmin
from ficus.auth.cli import auth_app
from ficus.auth.crypto import verify_password

runner = CliRunner()


def run(database_url: str, *args: str, input: str | None = None) -> str:
    result = runner.invoke(auth_app, [*args, "--database-url", database_url], input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_clients_through_the_cli(auth_database_url: str, tmp_path) -> None:
    shown = json.loads(run(
        auth_database_url, "clients", "add", "My App", "--kind", "confidential-symmetric",
        "--redirect-uri", "https://app.example.org/cb", "--scope", "launch/patient patient/*.rs", "--client-id", "my-app",
    ))
    assert shown["client_id"] == "my-app" and len(shown["client_secret"]) >= 40
    key = RSAKey.generate_key(2048, auto_kid=True)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    backend = json.loads(run(auth_database_url, "clients", "add", "Bulk", "--kind", "confidential-asymmetric", "--scope", "system/*.rs", "--jwks", str(jwks)))
    assert backend["grant_types"] == ["client_credentials"] and "client_secret" not in backend
    listed = json.loads(run(auth_database_url, "clients", "list"))
    assert {c["client_id"] for c in listed} == {"my-app", backend["client_id"]}
    assert all("secret" not in json.dumps(c) for c in listed)
    renewed = json.loads(run(auth_database_url, "clients", "secret", "my-app"))
    assert renewed["client_secret"] != shown["client_secret"]
    run(auth_database_url, "clients", "remove", "my-app")
    assert [c["client_id"] for c in json.loads(run(auth_database_url, "clients", "list"))] == [backend["client_id"]]


def test_bad_registrations_exit_with_a_message(auth_database_url: str) -> None:
    result = runner.invoke(auth_app, ["clients", "add", "X", "--kind", "public", "--database-url", auth_database_url])
    assert result.exit_code == 2 and "redirect URI" in result.output
    result = runner.invoke(auth_app, ["clients", "add", "X", "--kind", "confidential-asymmetric", "--scope", "system/*.rs", "--database-url", auth_database_url])
    assert result.exit_code == 2 and "JWKS" in result.output


def test_users_through_the_cli(auth_database_url: str, admin: AuthAdmin) -> None:
    run(auth_database_url, "users", "add", "nurse", "--fhir-user", "Practitioner/n1", "--password", "s3cret-enough")
    users = json.loads(run(auth_database_url, "users", "list"))
    assert users == [{"username": "nurse", "fhirUser": "Practitioner/n1", "name": None, "active": True}]
    stored = admin.store.user("nurse")
    assert stored is not None and stored.password_hash.startswith("scrypt$") and "s3cret" not in stored.password_hash
    assert verify_password("s3cret-enough", stored.password_hash)
    run(auth_database_url, "users", "password", "nurse", input="another-password\nanother-password\n")
    assert verify_password("another-password", admin.store.user("nurse").password_hash)  # type: ignore[union-attr]
    run(auth_database_url, "users", "fhir-user", "nurse", "PractitionerRole/r1")
    assert admin.store.user("nurse").fhir_user == "PractitionerRole/r1"  # type: ignore[union-attr]
    run(auth_database_url, "users", "remove", "nurse")
    assert admin.users() == []


def test_keys_and_launch_through_the_cli(auth_database_url: str, admin: AuthAdmin) -> None:
    first = json.loads(run(auth_database_url, "keys", "list"))
    assert len(first) == 1 and first[0]["retired"] is None
    assert "Now signing with" in run(auth_database_url, "keys", "rotate")
    keys = json.loads(run(auth_database_url, "keys", "list"))
    assert len(keys) == 2 and keys[0]["retired"] is None and keys[1]["retired"] is not None
    launch = run(auth_database_url, "launch", "--patient", "p1", "--encounter", "e1").strip()
    from ficus.auth.crypto import digest

    context = admin.store.launch(digest(launch))
    assert context is not None and (context.patient, context.encounter) == ("p1", "e1")


def test_admin_validation(admin: AuthAdmin) -> None:
    with pytest.raises(AdminError, match="fhirUser"):
        admin.add_user("x", "long enough", "Observation/1")
    with pytest.raises(AdminError, match="8 characters"):
        admin.add_user("x", "short")
    with pytest.raises(AdminError, match="not a valid SMART scope"):
        admin.register_client("X", "public", ["https://a.example/cb"], "patient/Observation.xyz")
    with pytest.raises(AdminError, match="private keys"):
        admin.register_client("X", "confidential-asymmetric", scope="system/*.rs", jwks={"keys": [RSAKey.generate_key(2048).as_dict(private=True)]})
    with pytest.raises(AdminError, match="public client"):
        admin.register_client("X", "public", ["https://a.example/cb"], "system/*.rs", grant_types=["client_credentials"])
