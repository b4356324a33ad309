-- Resources (APIs, policies, issuers, …): one row per kind and name. `spec` is sealed JSON
-- (AES-256-GCM, bound to kind and name); `version` starts at 1 and grows by one per change.
CREATE TABLE resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    spec BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Grows by one with every committed change to `resources`: gateways compare it to know
-- whether their configuration is current.
CREATE TABLE config_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO config_revision (id, revision) VALUES (1, 0);
