-- Signed-in browser sessions of the portal's pages: a developer's, or an admin's (who signed
-- in with the admin token). Only a SHA-256 of the session cookie is kept; the CSRF token every
-- form of the session carries is kept as is (it is no credential on its own).
CREATE TABLE portal_sessions (
    token_hash TEXT PRIMARY KEY,
    developer_id TEXT REFERENCES portal_developers (id) ON DELETE CASCADE,
    admin INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    -- A JSON array of product names: the developer's cart.
    cart TEXT NOT NULL,
    created_at_secs INTEGER NOT NULL,
    expires_at_secs INTEGER NOT NULL
);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at_secs);

-- Every email the portal sends, written before it is sent: with no SMTP server configured, or
-- while it is down, emails wait here (and admins read them on the outbox page). No secrets
-- are ever put in an email.
CREATE TABLE portal_outbox (
    id TEXT PRIMARY KEY,
    -- What happened: submitted, approved, rejected, revoked.
    event TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_secs INTEGER NOT NULL,
    sent_at_secs INTEGER,
    attempts INTEGER NOT NULL,
    -- Why the last attempt failed.
    last_error TEXT,
    -- When a sender may try it (next); a sender takes it by moving this forward.
    next_attempt_at_secs INTEGER NOT NULL
);
CREATE INDEX portal_outbox_due ON portal_outbox (sent_at_secs, next_attempt_at_secs);

-- Requests per OAuth client per minute, by outcome, as the gateway nodes count them (each
-- node adds its counts). A client is unique within its issuer.
CREATE TABLE usage_minutes (
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- Minutes since the epoch.
    minute INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    -- 401, 403, 429.
    rejected INTEGER NOT NULL,
    -- Other 4xx and 5xx.
    failed INTEGER NOT NULL,
    PRIMARY KEY (issuer, client_id, minute)
);
CREATE INDEX usage_minutes_minute ON usage_minutes (minute);
