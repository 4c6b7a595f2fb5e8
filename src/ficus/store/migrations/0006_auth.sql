-- The built-in SMART on FHIR authorization server (ficus.auth). Secrets, passwords, codes and
-- tokens are stored only as hashes (`*_hash`: SHA-256 of a random value, scrypt for passwords),
-- so a copy of the database yields no usable credential. Times are microseconds since the epoch.
-- Lists (redirect URIs, grant types) and JWKS are JSON text.

-- Registered client applications. `kind`: public, confidential-symmetric (client secret),
-- confidential-asymmetric (private_key_jwt with keys from `jwks` or `jwks_url`).
CREATE TABLE auth_client (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scope TEXT NOT NULL,
    jwks TEXT,
    jwks_url TEXT,
    can_introspect {bool} NOT NULL,
    active {bool} NOT NULL,
    created BIGINT NOT NULL
);

-- End users who log in on the authorization server; `fhir_user` is a relative reference to
-- their Practitioner, Patient, RelatedPerson or Person resource.
CREATE TABLE auth_user (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    fhir_user TEXT,
    display_name TEXT,
    active {bool} NOT NULL,
    created BIGINT NOT NULL
);

-- Signing keys (private JWK). The newest key without `retired` signs; retired keys stay in the
-- JWKS until they are pruned, so tokens signed before a rotation still verify.
CREATE TABLE auth_key (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created BIGINT NOT NULL,
    retired BIGINT
);

-- EHR launch contexts: an EHR (or `ficus auth launch`) stores one and passes its id to the app
-- as `launch`; the authorization request binds it to the token.
CREATE TABLE auth_launch (
    launch_hash TEXT PRIMARY KEY,
    client_id TEXT,
    patient TEXT,
    encounter TEXT,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);

-- Authorization requests between the authorize endpoint and the user's consent: the original
-- parameters, the browser they belong to, and what login and the patient picker decided.
CREATE TABLE auth_request (
    request_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    scope TEXT NOT NULL,
    username TEXT,
    auth_time BIGINT,
    patient TEXT,
    encounter TEXT,
    launch_bound {bool} NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);

-- Authorization codes: single use; a second use revokes every token of the grant.
CREATE TABLE auth_code (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    username TEXT NOT NULL,
    redirect_uri TEXT,
    scope TEXT NOT NULL,
    code_challenge TEXT,
    code_challenge_method TEXT,
    nonce TEXT,
    auth_time BIGINT NOT NULL,
    context TEXT NOT NULL,
    used {bool} NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX auth_code_nonce ON auth_code (client_id, nonce);

-- Access and refresh tokens (`kind`). `grant_id` ties together every token issued from one
-- authorization, so code reuse, refresh token reuse and revocation can end them together.
-- `context` holds the launch context (patient, encounter, fhirUser, ...) as JSON.
CREATE TABLE auth_token (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    username TEXT,
    scope TEXT NOT NULL,
    context TEXT NOT NULL,
    issued BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    revoked {bool} NOT NULL,
    rotated {bool} NOT NULL
);
CREATE INDEX auth_token_grant ON auth_token (grant_id);
CREATE INDEX auth_token_expires ON auth_token (expires);

-- `jti` values of client assertions seen within their lifetime (replay protection).
CREATE TABLE auth_jti (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX auth_jti_expires ON auth_jti (expires);
