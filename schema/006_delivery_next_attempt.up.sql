-- When a pending delivery's next attempt is due, for operators; NULL when it
-- is not known (the first attempt, or a final delivery). Not indexed, so that
-- recording an attempt stays a HOT update.
ALTER TABLE /* TEMPLATE: schema */deliveries ADD COLUMN next_attempt_at timestamptz;
