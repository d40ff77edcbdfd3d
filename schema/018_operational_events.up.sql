-- hookrelay's operational events join the catalogue (outbox/catalog.go).
INSERT INTO /* TEMPLATE: schema */event_types (name, catalogue)
SELECT unnest(ARRAY['Hook.Created', 'Hook.Updated', 'Hook.Deleted', 'Hook.Disabled', 'Hook.Enabled', 'Delivery.Failed']), true
ON CONFLICT (name) DO UPDATE SET catalogue = true;
