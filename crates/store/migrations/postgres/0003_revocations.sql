-- Revocations: tokens the gateway refuses before their `exp`, by `client_id`, `jti` or
-- identity (`target`), within one issuer or (NULL) every issuer, while now < `until_secs`.
-- Not sealed: they name clients and identities, not secrets.
CREATE TABLE revocations (
    id BIGSERIAL PRIMARY KEY,
    target TEXT NOT NULL CHECK (target IN ('client_id', 'jti', 'identity')),
    value TEXT NOT NULL,
    issuer TEXT,
    until_secs BIGINT NOT NULL,
    issued_before_secs BIGINT,
    reason TEXT,
    created_at_secs BIGINT NOT NULL
);
CREATE INDEX revocations_until ON revocations (until_secs);

-- Grows by one with every change to `revocations`, apart from the configuration revision:
-- nodes reload their revocations, not their whole configuration.
CREATE TABLE revocation_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO revocation_revision (id, revision) VALUES (1, 0);
