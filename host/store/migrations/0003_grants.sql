-- Consent and app data: the platform secret that keys app-scoped ids, the app-scoped id map,
-- users' grants, the privacy record, per-app key-value storage and per-conversation send budgets.

CREATE TABLE platform_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE app_users (
    app_id      TEXT NOT NULL,
    app_user_id TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (app_id, app_user_id),
    UNIQUE (app_id, user_id)
);

CREATE TABLE grants (
    user_id     TEXT NOT NULL REFERENCES users(id),
    app_id      TEXT NOT NULL REFERENCES apps(id),
    scopes      TEXT NOT NULL,
    version     TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);

CREATE TABLE privacy_log (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    capability  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX privacy_log_user ON privacy_log(user_id, at);

CREATE TABLE app_kv (
    app_id      TEXT NOT NULL,
    owner       TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, owner, key)
);

CREATE TABLE send_budgets (
    app_id          TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    milli_tokens    BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (app_id, conversation_id)
);
