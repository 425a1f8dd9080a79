-- Delivery cursors are bounded per user: when each device last acknowledged something, so that a
-- user's least recently used devices beyond the cap can be dropped (see `cursors.rs`).
ALTER TABLE delivery_cursors ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
