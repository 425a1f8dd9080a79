-- The testers a developer names for an app: they may run its versions in trial in groups
-- they own, before review.
CREATE TABLE app_testers (
    app_id TEXT NOT NULL REFERENCES apps (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
