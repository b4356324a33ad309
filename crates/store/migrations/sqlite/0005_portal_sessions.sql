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
