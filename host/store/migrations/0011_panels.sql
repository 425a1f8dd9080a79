-- A user's own app panel: released apps a user added without any group. Each runs in a private
-- conversation of the user (its only member) with the app installed.
CREATE TABLE app_panels (
    user_id TEXT NOT NULL REFERENCES users (id),
    app_id TEXT NOT NULL REFERENCES apps (id),
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
