-- Who may add and remove apps in a group: 'owner' (the default, no row) or 'members'.
CREATE TABLE group_app_policies (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations (id),
    policy TEXT NOT NULL,
    CHECK (policy IN ('owner', 'members'))
);
