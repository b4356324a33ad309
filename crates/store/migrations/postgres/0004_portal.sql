-- The developer portal's records: developers, their apps, access requests and the OAuth
-- client each app is registered as at the IdP. Ids are random (hex); times are Unix seconds.

CREATE TABLE portal_developers (
    id TEXT PRIMARY KEY,
    -- Lower-cased; one account per address.
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- Argon2id, PHC string format.
    password_hash TEXT NOT NULL,
    created_at_secs BIGINT NOT NULL
);

CREATE TABLE portal_apps (
    id TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL REFERENCES portal_developers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- A JSON array of strings.
    redirect_uris TEXT NOT NULL,
    created_at_secs BIGINT NOT NULL,
    UNIQUE (developer_id, name)
);

-- What a developer asked for an app: a product under a plan, as a client type. 'approving'
-- while the IdP is being called (one approval at a time; a second click finds it taken).
CREATE TABLE portal_access_requests (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES portal_apps (id) ON DELETE CASCADE,
    product TEXT NOT NULL,
    plan TEXT NOT NULL,
    client_type TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approving', 'approved', 'rejected', 'revoked')),
    -- The admin's reason for a rejection or revocation.
    reason TEXT,
    -- The IdP's words when the last approval failed.
    last_error TEXT,
    created_at_secs BIGINT NOT NULL,
    decided_at_secs BIGINT
);
CREATE INDEX portal_access_requests_status ON portal_access_requests (status);
CREATE INDEX portal_access_requests_app ON portal_access_requests (app_id);

-- The OAuth client an app is at the IdP (one app, one client). The registration (the IdP's
-- whole answer: client secret, registration access token) is sealed like specs are.
CREATE TABLE portal_clients (
    app_id TEXT PRIMARY KEY REFERENCES portal_apps (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    client_type TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- Space-separated: the scopes the client is registered with.
    scope TEXT NOT NULL,
    registration BYTEA NOT NULL,
    updated_at_secs BIGINT NOT NULL
);

-- Registrations the IdP made that are not yet recorded in portal_clients: written as soon as
-- the IdP answers, removed with the write that records the client. What is left after a crash
-- is finished or undone at the IdP when the portal starts.
CREATE TABLE portal_registration_journal (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    registration BYTEA NOT NULL,
    created_at_secs BIGINT NOT NULL
);

-- Developers' personal access tokens for the portal's JSON API: only a SHA-256 of each is
-- kept (a token is 32 random bytes, so a plain hash is enough to make a leaked table useless).
CREATE TABLE portal_tokens (
    token_hash TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL REFERENCES portal_developers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at_secs BIGINT NOT NULL
);
