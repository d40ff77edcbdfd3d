-- A delivery's fate is its own: each pending delivery is due at its own
-- next_attempt_at (NULL: now), which its deliver job snoozes to, and fails
-- only after every attempt of the retry schedule, counted on the delivery.
-- replayed_attempts is how many attempts it had when it was last replayed:
-- a replay starts the schedule again, while attempts keep counting.
ALTER TABLE /* TEMPLATE: schema */deliveries ADD COLUMN replayed_attempts integer NOT NULL DEFAULT 0;
