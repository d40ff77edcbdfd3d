-- Captures installed by a preset (capture install --preset logto) say so, so
-- that capture list shows them and capture remove --preset removes them all.
ALTER TABLE /* TEMPLATE: schema */captures ADD COLUMN preset text;
