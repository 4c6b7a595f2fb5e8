-- Search index, second shape. Every index row gets `pkey`, a 64-bit hash of (res_type, param)
-- computed by ficus.store.indexing.param_key, so each index leads with one narrow integer, and
-- ends with `rid` so a match is answered from the index alone. `grp` numbers the elements of a
-- composite parameter (its components share it). `idx_string.vkey` is the normalised value as
-- UTF-8 bytes: byte order is the same on both databases, so a starts-with search is an index
-- range whatever the collation. `idx_quantity.cvalue/ccode` hold the value in canonical UCUM
-- units (`5.4 mg` -> `0.0054 g`). Numbers and quantities are ranges like dates: `value` is the
-- low end and `high` the high end (equal for a plain value, different for a Range); like
-- dates they have an index on each end, since gt/ge/eb compare the high end.
-- Rows written before this migration have no pkey: run `ficus reindex` after upgrading.

ALTER TABLE idx_string ADD COLUMN pkey BIGINT;
ALTER TABLE idx_string ADD COLUMN grp INTEGER;
ALTER TABLE idx_string ADD COLUMN vkey {blob};
DROP INDEX idx_string_value;
CREATE INDEX idx_string_key ON idx_string (pkey, vkey, rid);

ALTER TABLE idx_token ADD COLUMN pkey BIGINT;
ALTER TABLE idx_token ADD COLUMN grp INTEGER;
DROP INDEX idx_token_code;
CREATE INDEX idx_token_key ON idx_token (pkey, code, system, rid);

ALTER TABLE idx_date ADD COLUMN pkey BIGINT;
ALTER TABLE idx_date ADD COLUMN grp INTEGER;
DROP INDEX idx_date_low;
CREATE INDEX idx_date_key_low ON idx_date (pkey, low, high, rid);
CREATE INDEX idx_date_key_high ON idx_date (pkey, high, low, rid);

ALTER TABLE idx_number ADD COLUMN pkey BIGINT;
ALTER TABLE idx_number ADD COLUMN grp INTEGER;
ALTER TABLE idx_number ADD COLUMN high DOUBLE PRECISION;
DROP INDEX idx_number_value;
CREATE INDEX idx_number_key ON idx_number (pkey, value, rid);
CREATE INDEX idx_number_key_high ON idx_number (pkey, high, rid);

ALTER TABLE idx_quantity ADD COLUMN pkey BIGINT;
ALTER TABLE idx_quantity ADD COLUMN grp INTEGER;
ALTER TABLE idx_quantity ADD COLUMN high DOUBLE PRECISION;
ALTER TABLE idx_quantity ADD COLUMN cvalue DOUBLE PRECISION;
ALTER TABLE idx_quantity ADD COLUMN chigh DOUBLE PRECISION;
ALTER TABLE idx_quantity ADD COLUMN ccode TEXT;
DROP INDEX idx_quantity_value;
CREATE INDEX idx_quantity_key ON idx_quantity (pkey, value, rid);
CREATE INDEX idx_quantity_key_high ON idx_quantity (pkey, high, rid);
CREATE INDEX idx_quantity_canonical ON idx_quantity (pkey, ccode, cvalue, rid) WHERE ccode IS NOT NULL;
CREATE INDEX idx_quantity_canonical_high ON idx_quantity (pkey, ccode, chigh, rid) WHERE ccode IS NOT NULL;

ALTER TABLE idx_reference ADD COLUMN pkey BIGINT;
ALTER TABLE idx_reference ADD COLUMN grp INTEGER;
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_key ON idx_reference (pkey, target_id, target_type, rid);
CREATE INDEX idx_reference_url ON idx_reference (pkey, url, rid) WHERE url IS NOT NULL;

ALTER TABLE idx_uri ADD COLUMN pkey BIGINT;
ALTER TABLE idx_uri ADD COLUMN grp INTEGER;
DROP INDEX idx_uri_value;
CREATE INDEX idx_uri_key ON idx_uri (pkey, value, rid);
