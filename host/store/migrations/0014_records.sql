-- Delivery cursors, reply budgets, and indexes for pruning the records.

-- The last seq each of a user's devices acknowledged over WebSocket, per conversation. Only
-- moves forward (see `cursors.rs`).
CREATE TABLE delivery_cursors (
    user_id         TEXT NOT NULL,
    device          TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    acked_seq       BIGINT NOT NULL,
    PRIMARY KEY (user_id, device, conversation_id)
);
CREATE INDEX delivery_cursors_conversation ON delivery_cursors(user_id, conversation_id);

-- Send budgets of an app's replies to users' own events (commands, button presses, opened), a
-- token bucket per (app, conversation, user); `send_budgets` stays the bucket of unsolicited
-- sends (timers, payment events, backend sends) per (app, conversation).
CREATE TABLE reply_budgets (
    app_id          TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    milli_tokens    BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (app_id, conversation_id, user_id)
);

-- Retention prunes by age across apps and users.
CREATE INDEX invocations_created ON invocations(created_at);
CREATE INDEX privacy_log_at ON privacy_log(at);
