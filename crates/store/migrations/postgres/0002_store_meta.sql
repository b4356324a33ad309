-- Facts about the store itself. `key_check`: a value sealed with the secret key the store was
-- first opened with, so that a node given another key is refused at once instead of failing
-- on every row.
CREATE TABLE store_meta (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
