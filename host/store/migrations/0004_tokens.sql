-- The token broker's state: signing keys, app (OAuth client) credentials, one-time login codes,
-- refresh-token families and every refresh token issued in them, revoked access-token ids, and
-- when each granted scope was last revoked. Broker times (keys, codes, tokens) are Unix SECONDS,
-- the broker's clock and the JWT `NumericDate`; `revoked_at_ms` is milliseconds like `grants`.

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    retiring_since  BIGINT,
    private_key_pem TEXT NOT NULL
);

CREATE TABLE app_credentials (
    app_id      TEXT PRIMARY KEY REFERENCES apps(id),
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    rotated_at  BIGINT NOT NULL
);

CREATE TABLE login_codes (
    code_hash     TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    pkce          TEXT NOT NULL,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    consumed_at   BIGINT,
    issued_family TEXT
);
CREATE INDEX login_codes_expiry ON login_codes(expires_at);

CREATE TABLE refresh_families (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX refresh_families_user ON refresh_families(user_id, app_id);
CREATE INDEX refresh_families_expiry ON refresh_families(expires_at);

-- One row per refresh token ever issued in a family (so that a replayed old one is recognised),
-- with the access token issued beside it (revoked with the family).
CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    generation        BIGINT NOT NULL,
    issued_at         BIGINT NOT NULL,
    access_jti        TEXT NOT NULL,
    access_expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens(expires_at);

-- `scope` is a scope name, or `*` when the whole grant was deleted.
CREATE TABLE grant_revocations (
    user_id       TEXT NOT NULL,
    app_id        TEXT NOT NULL,
    scope         TEXT NOT NULL,
    revoked_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, scope)
);
