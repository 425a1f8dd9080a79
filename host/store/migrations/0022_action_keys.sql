-- Idempotency keys of card button presses (see `action_keys.rs`): a press sent again with the
-- same key (after a lost answer) reaches the app once. `body_hash` tells a repeat from a reuse
-- of the key for another press. Forgotten a day after they were claimed.
CREATE TABLE action_keys (
    user_id         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, message_id, idempotency_key)
);
CREATE INDEX action_keys_created ON action_keys(created_at);
