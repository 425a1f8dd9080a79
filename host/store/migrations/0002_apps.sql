-- Mini-apps: registered apps, their uploaded versions (component bytes live in the database so
-- that every node can load them), installs into conversations, and the invocation log.

CREATE TABLE apps (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    developer_id  TEXT NOT NULL REFERENCES users(id),
    secret_hash   TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE app_versions (
    app_id      TEXT NOT NULL REFERENCES apps(id),
    version     TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    wasm        BYTEA NOT NULL,
    wasm_sha256 TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, version)
);

CREATE TABLE installs (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    app_id          TEXT NOT NULL REFERENCES apps(id),
    version         TEXT NOT NULL,
    installed_by    TEXT NOT NULL REFERENCES users(id),
    sideloaded      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, app_id)
);

CREATE TABLE invocations (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES apps(id),
    version         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    app_user_id     TEXT NOT NULL,
    event_kind      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    error_kind      TEXT,
    error_message   TEXT,
    duration_us     BIGINT NOT NULL,
    fuel            BIGINT NOT NULL,
    calls           TEXT NOT NULL,
    logs            TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX invocations_app ON invocations(app_id, created_at);
