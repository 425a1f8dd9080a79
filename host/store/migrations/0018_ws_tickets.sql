-- One-time WebSocket tickets, in the database so that any node redeems what any node issued.
-- Stored by hash (like session tokens); redeeming deletes the row, so a ticket opens one socket
-- in the whole deployment. Expired rows are deleted as new tickets are issued.
CREATE TABLE ws_tickets (
    ticket_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ws_tickets_expires ON ws_tickets(expires_at);
