-- When the signing key last changed, so that the console can tell which
-- attempts were signed with the keys the hook holds.
ALTER TABLE /* TEMPLATE: schema */hooks ADD COLUMN key_rotated_at timestamptz;
