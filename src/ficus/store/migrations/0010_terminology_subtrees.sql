-- The size of every subtree of a loaded code system (codes below each code with any), written
-- with the transitive closure when a release is loaded, so paging an is-a expansion of a large
-- subtree starts without counting it. A code with no row has nothing below it, or belongs to a
-- release loaded before this table existed (then it is counted).

CREATE TABLE tx_subtree (
    cs BIGINT NOT NULL,
    code TEXT NOT NULL,
    descendants BIGINT NOT NULL,
    PRIMARY KEY (cs, code)
);
