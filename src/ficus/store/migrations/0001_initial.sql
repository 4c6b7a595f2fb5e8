-- Resources: one head row per logical resource (locked on write), every version in
-- resource_version with its exact JSON text, typed search index rows for current versions,
-- and the outbox every committed change writes to.
-- {identity}, {blob} and {bool} are filled in per database by ficus.store.database.

CREATE TABLE resource (
    rid {identity},
    res_type TEXT NOT NULL,
    res_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted {bool} NOT NULL,
    UNIQUE (res_type, res_id)
);
CREATE INDEX resource_type_updated ON resource (res_type, last_updated);

CREATE TABLE resource_version (
    seq {identity},
    rid BIGINT NOT NULL,
    res_type TEXT NOT NULL,
    res_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated BIGINT NOT NULL,
    method TEXT NOT NULL,
    content {blob},
    UNIQUE (res_type, res_id, version)
);
CREATE INDEX resource_version_updated ON resource_version (last_updated);
CREATE INDEX resource_version_type_updated ON resource_version (res_type, last_updated);

CREATE TABLE idx_string (
    rid BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL,
    value TEXT NOT NULL, exact TEXT NOT NULL
);
CREATE INDEX idx_string_value ON idx_string (res_type, param, value);
CREATE INDEX idx_string_rid ON idx_string (rid);

CREATE TABLE idx_token (
    rid BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL,
    system TEXT, code TEXT, text TEXT
);
CREATE INDEX idx_token_code ON idx_token (res_type, param, code, system);
CREATE INDEX idx_token_rid ON idx_token (rid);

CREATE TABLE idx_date (
    rid BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL,
    low BIGINT NOT NULL, high BIGINT NOT NULL
);
CREATE INDEX idx_date_low ON idx_date (res_type, param, low);
CREATE INDEX idx_date_rid ON idx_date (rid);

CREATE TABLE idx_number (
    rid BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_number_value ON idx_number (res_type, param, value);
CREATE INDEX idx_number_rid ON idx_number (rid);

CREATE TABLE idx_quantity (
    rid BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, system TEXT, code TEXT, unit TEXT
);
CREATE INDEX idx_quantity_value ON idx_quantity (res_type, param, code, value);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid);

CREATE TABLE idx_reference (
    rid BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL,
    target_type TEXT, target_id TEXT, url TEXT
);
CREATE INDEX idx_reference_target ON idx_reference (res_type, param, target_id, target_type);
CREATE INDEX idx_reference_by_target ON idx_reference (target_type, target_id);
CREATE INDEX idx_reference_rid ON idx_reference (rid);

CREATE TABLE idx_uri (
    rid BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX idx_uri_value ON idx_uri (res_type, param, value);
CREATE INDEX idx_uri_rid ON idx_uri (rid);

CREATE TABLE outbox (
    seq {identity},
    rid BIGINT NOT NULL,
    res_type TEXT NOT NULL,
    res_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    created BIGINT NOT NULL
);
