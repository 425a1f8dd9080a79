-- Sessions a user can list and revoke by id, and accounts an admin can disable.
-- A session's public id is random for new sessions; sessions from before this migration get
-- one derived from their token hash (a hash of a 256-bit random token: nothing to guess from).
ALTER TABLE sessions ADD COLUMN id TEXT;
UPDATE sessions SET id = 'ses_' || substr(token_hash, 1, 24) WHERE id IS NULL;
CREATE UNIQUE INDEX sessions_id ON sessions(id);
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
