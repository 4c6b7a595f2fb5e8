-- Sorted searches page over a stored snapshot of their matches' row ids in sort order
-- (ficus.search.snapshot), so an entry whose sort value changes between page fetches is
-- neither skipped nor served twice. `fingerprint` ties a snapshot to the search (types,
-- criteria, sort, compartment) that made it; `expires` is in microseconds since the epoch, and
-- expired snapshots are removed when the next one is made.

CREATE TABLE search_snapshot (
    id BIGINT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    total INTEGER NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX search_snapshot_expires ON search_snapshot (expires);

CREATE TABLE search_snapshot_entry (
    snapshot BIGINT NOT NULL,
    position INTEGER NOT NULL,
    rid BIGINT NOT NULL,
    PRIMARY KEY (snapshot, position)
);
