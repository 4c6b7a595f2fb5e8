-- Code systems loaded from publishers' releases (ficus.terminology.loaders): LOINC, SNOMED CT,
-- RxNorm, ICD-10-CM. One `tx_code_system` row per loaded version; its content rows carry its id
-- (`cs`). A load writes a new row in state `loading`, fills the content in batches, then flips it
-- to `active` (and the version it replaces to `superseded`) in one transaction, so readers see
-- the old version until the new one is complete. `meta` is JSON: property definitions, case
-- sensitivity, language, hierarchy meaning, publisher, copyright.
-- `tx_hierarchy` holds direct is-a links, `tx_closure` every (ancestor, descendant) pair
-- (a concept is not its own ancestor), `tx_property` one row per property value (`value` is
-- text; Coding values are JSON).

CREATE TABLE tx_code_system (
    id {identity},
    url TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT,
    title TEXT,
    state TEXT NOT NULL,
    meta TEXT NOT NULL,
    concepts INTEGER NOT NULL,
    loaded BIGINT NOT NULL
);
CREATE INDEX tx_code_system_url ON tx_code_system (url, state);

CREATE TABLE tx_concept (
    cs BIGINT NOT NULL,
    code TEXT NOT NULL,
    display TEXT,
    definition TEXT,
    status TEXT,
    inactive {bool} NOT NULL,
    abstract {bool} NOT NULL,
    PRIMARY KEY (cs, code)
);
CREATE INDEX tx_concept_folded ON tx_concept (cs, (lower(code)));

CREATE TABLE tx_designation (
    cs BIGINT NOT NULL,
    code TEXT NOT NULL,
    language TEXT,
    use_system TEXT,
    use_code TEXT,
    use_display TEXT,
    value TEXT NOT NULL
);
CREATE INDEX tx_designation_code ON tx_designation (cs, code);

CREATE TABLE tx_property (
    cs BIGINT NOT NULL,
    code TEXT NOT NULL,
    property TEXT NOT NULL,
    type TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX tx_property_code ON tx_property (cs, code);
CREATE INDEX tx_property_value ON tx_property (cs, property, value);

CREATE TABLE tx_hierarchy (
    cs BIGINT NOT NULL,
    parent TEXT NOT NULL,
    child TEXT NOT NULL,
    PRIMARY KEY (cs, parent, child)
);
CREATE INDEX tx_hierarchy_child ON tx_hierarchy (cs, child);

CREATE TABLE tx_closure (
    cs BIGINT NOT NULL,
    ancestor TEXT NOT NULL,
    descendant TEXT NOT NULL,
    PRIMARY KEY (cs, ancestor, descendant)
);
CREATE INDEX tx_closure_descendant ON tx_closure (cs, descendant);
