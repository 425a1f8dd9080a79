-- Consent requests waiting for a user's answer, shared by the nodes: any node lists them and
-- takes the answer. The events that wait for the answer stay on the node that parked them, which
-- runs them when the answer reaches it.
CREATE TABLE consent_requests (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
CREATE INDEX consent_requests_app ON consent_requests(app_id);
