-- Alerts (issue 17 item 5): what `usage-gateway alerts` posted to the webhook, keyed by a stable identity
-- (budget: entity, id, period start and threshold; anomaly: dimension, id, day and metric), so a second
-- run does not post it again. A row is marked sent only after the webhook answered 2xx; a failed post
-- keeps sent_at NULL (with its error) and is posted again by the next run.
CREATE TABLE alerts (
    identity        text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('budget', 'anomaly')),
    message         jsonb NOT NULL,          -- the body posted (Slack-compatible: text and blocks)
    attempts        integer NOT NULL DEFAULT 0,
    first_tried_at  timestamptz NOT NULL DEFAULT now(),
    last_error      text,                    -- why the last post failed, when it did
    sent_at         timestamptz              -- NULL until a post was answered 2xx
);
