-- Captures are keyed by the table's qualified name quoted where needed, so
-- that s."x.y" and "s.x".y are two keys (names with a dot in them were one).
UPDATE /* TEMPLATE: schema */captures
SET table_name = quote_ident(split_part(table_name, '.', 1)) || '.' || quote_ident(substr(table_name, strpos(table_name, '.') + 1));
