-- A sorted search's snapshot (ficus.search.snapshot) is stored a chunk at a time, as its pages
-- reach the end of what is stored: `complete` says its entries are every match (its last chunk
-- came back short), and `total` is the number of entries stored. Snapshots made before this
-- held every match.

ALTER TABLE search_snapshot ADD COLUMN complete {bool} NOT NULL DEFAULT TRUE;
