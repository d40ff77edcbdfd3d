package capture

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox"
)

// Capture functions run with the capture role's rights (SECURITY DEFINER),
// whoever mutates the table, so nothing in them may run code that a table's
// owner or a publisher can define:
//   - a column's value becomes JSON by jsonValue, text by textValue, never
//     by a cast;
//   - a function serves its own table only (tableCheck), and PUBLIC has no
//     EXECUTE on it (giveToRole revokes it in the installing transaction),
//     so no one can attach it to a table of theirs;
//   - columns that other tables are compared by keep the types they had at
//     install (typeCheck), so that no comparison can reach a cast the
//     table's owner defined later;
//   - conditions on a row's own columns are the trigger's WHEN clause, which
//     runs with the rights of the role that mutates the table, and whose
//     columns Postgres lets no one give another type;
//   - the search_path is pg_catalog, then pg_temp, which Postgres never
//     searches for functions or operators, and standard_conforming_strings
//     is on, so that the body's literals read the same in every session
//     (PL/pgSQL reads them with the setting of the session that first
//     calls the function);
//   - rows are found by comparing columns of one key class (keyClass) with
//     Postgres's own operators; a value the writer controls (a path into a
//     JSON column) is converted to the key's type only when it is valid
//     for it (lookupValue), so that no lookup can fail the writer's
//     statement.

// captureTable is a table as the catalogue describes it.
type captureTable struct {
	name    string // schema.table, quoted where needed, as Postgres spells it
	ident   pgx.Identifier
	columns []string
	types   map[string]columnType
	// notNull are the columns declared NOT NULL.
	notNull map[string]bool
	// uniqueKeys are the column sets of its unique indexes.
	uniqueKeys [][]string
	// rowSecurity is whether the table has row-level security enabled.
	rowSecurity bool
}

func (t *captureTable) has(column string) bool { return slices.Contains(t.columns, column) }

// col is the SQL of row's column.
func col(row, column string) string { return row + "." + pgx.Identifier{column}.Sanitize() }

// columnType is a column's type: its OID and its name as format_type spells
// it.
type columnType struct {
	oid  int64
	name string
}

// firstNormalObjectID is Postgres's FirstNormalObjectId: a type with a
// smaller OID is built in, and only a superuser can define a cast or an
// operator on it.
const firstNormalObjectID = 16384

func (t columnType) builtIn() bool { return t.oid < firstNormalObjectID }

// keyClass is the class of a type that lookups may compare, or "": values of
// one class compare with Postgres's own operators (varchar with text, int2,
// int4 and int8 with one another).
func (t columnType) keyClass() string {
	switch t.oid {
	case 25, 1043: // text, varchar
		return "text"
	case 21, 23, 20: // int2, int4, int8
		return "integer"
	case 2950:
		return "uuid"
	}
	return ""
}

// keyTypes names the types of the key classes, for errors.
const keyTypes = "text, varchar, smallint, integer, bigint or uuid"

// lookupValue is the SQL of text, a value the writer controls, as a value of
// class to compare with a key: NULL unless it is valid for the class, so
// that a malformed value finds nothing rather than failing the writer's
// statement. Only built-in conversions are used.
func lookupValue(text, class string) string {
	switch class {
	case "integer":
		return fmt.Sprintf(`CASE WHEN %[1]s ~ '^[+-]?[0-9]{1,19}$' THEN
            CASE WHEN %[1]s::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN %[1]s::bigint END END`, text)
	case "uuid":
		return fmt.Sprintf(`CASE WHEN %[1]s ~ '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$' THEN %[1]s::uuid END`, text)
	}
	return text
}

// Type OIDs of boolean, timestamp and timestamptz.
const (
	booleanOID     = 16
	timestampOID   = 1114
	timestamptzOID = 1184
)

// style is how a mapping writes JSON: its keys, camelCase or the column
// names as they are, and its timestamps, Unix milliseconds or RFC 3339.
type style struct {
	camelKeys bool
	unixMS    bool
}

// key is the JSON key of column.
func (s style) key(column string) string {
	if s.camelKeys {
		return camelCase(column)
	}
	return column
}

// typed is the SQL, a format with %s for the value, of a built-in value's
// JSON (see jsonValue).
func (s style) typed(t columnType) string {
	if s.unixMS && (t.oid == timestampOID || t.oid == timestamptzOID) {
		return "to_jsonb((extract(epoch FROM %s) * 1000)::bigint)"
	}
	return "to_jsonb(%s)"
}

// jsonValue is the SQL of value, a column of type t, as JSON, made without
// any cast or operator that a table's owner could define: a value of a
// built-in type is converted by typed (Postgres's own conversion of such a
// type), and only while the column still has that type, checked at every
// call (pg_typeof: a column may be given another type later); any other
// value, an enum's or a domain's, is published as its text, made by the
// type's output function, which only a superuser can write.
func jsonValue(value string, t columnType, typed string) string {
	text := fmt.Sprintf("to_jsonb(%s)", textValue(value))
	if !t.builtIn() {
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE %s END", value, text)
	}
	return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL WHEN pg_typeof(%[1]s)::oid = %[2]d THEN %[3]s ELSE %[4]s END",
		value, t.oid, fmt.Sprintf(typed, value), text)
}

// textValue is the SQL of value as text, by its type's output function: no
// cast. NULL becomes the empty string.
func textValue(value string) string {
	return fmt.Sprintf("format('%%s', %s)", value)
}

// column is a published column and its JSON key.
type column struct {
	name, key string
}

// jsonObject is the SQL of the JSON object of row's columns of table.
func jsonObject(table *captureTable, row string, columns []column, st style) string {
	parts := make([]string, len(columns))
	for i, c := range columns {
		t := table.types[c.name]
		parts[i] = quoteLiteral(c.key) + ", " + jsonValue(col(row, c.name), t, st.typed(t))
	}
	return "jsonb_build_object(" + strings.Join(parts, ", ") + ")"
}

// tableCheck is the statement with which a capture function refuses to run
// for any table but the one it was installed on.
func tableCheck(table *captureTable) string {
	return fmt.Sprintf(`IF TG_TABLE_SCHEMA <> %[1]s OR TG_TABLE_NAME <> %[2]s THEN
        RAISE EXCEPTION 'this hookrelay capture function serves table %%, not %%.%%', %[3]s, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;`, quoteLiteral(table.ident[0]), quoteLiteral(table.ident[1]), quoteLiteral(table.name))
}

// tableColumn is a column of a table that a capture function reads.
type tableColumn struct {
	table  *captureTable
	column string
}

// typeCheck is the statements with which a capture function, before it
// reads other tables, locks them against a change of type and refuses to go
// on if one of columns no longer has the type it had at install: a column
// compared in a query may reach any cast its new type has. Reading a table
// locks it until the transaction ends.
func typeCheck(columns []tableColumn) string {
	if len(columns) == 0 {
		return ""
	}
	var locks, expected []string
	for _, c := range columns {
		lock := fmt.Sprintf("PERFORM FROM %s WHERE false;", c.table.ident.Sanitize())
		if !slices.Contains(locks, lock) {
			locks = append(locks, lock)
		}
		value := fmt.Sprintf("(%s::regclass, %s::name, %d::oid)", quoteLiteral(c.table.name), quoteLiteral(c.column), c.table.types[c.column].oid)
		if !slices.Contains(expected, value) {
			expected = append(expected, value)
		}
	}
	return fmt.Sprintf(`%s
    IF (SELECT count(*) FROM pg_attribute a
        WHERE NOT a.attisdropped AND (a.attrelid, a.attname, a.atttypid) IN (VALUES %s)) <> %d THEN
        RAISE EXCEPTION 'a column that this hookrelay capture reads changed its type since it was installed: install the capture again (hookrelay capture install)'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;`, strings.Join(locks, "\n    "), strings.Join(expected, ", "), len(expected))
}

// Bounds of captured data: an event's data and context may hold 256 KiB
// (events_data_and_context_at_most_262144_bytes), and a capture must never
// make the mutation it captures fail. Data larger than dataMaxBytes is
// published without its values over valueMaxBytes, or as its id alone, and
// the body says "truncated": true.
const (
	dataMaxBytes  = 200 << 10
	valueMaxBytes = 1 << 10
)

// fitData is the statement that makes the jsonb variable data fit an event,
// setting the jsonb variable context to say so when it had to be cut.
func fitData(data, context string) string {
	return fmt.Sprintf(`IF octet_length(%[1]s::text) > %[2]d THEN
            %[1]s := (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(%[1]s) WHERE octet_length(value::text) <= %[3]d);
            IF octet_length(%[1]s::text) > %[2]d THEN
                %[1]s := jsonb_build_object('id', %[1]s->'id');
            END IF;
            %[4]s := %[4]s || jsonb_build_object('truncated', true);
        END IF;`, data, dataMaxBytes, valueMaxBytes, context)
}

// setSubject is the statement that sets subject, the subject of the events
// of entity whose key is the column key of the row changed (OLD when
// deleted): "Entity:key", which orders its events for hooks ordered by
// subject, as Logto's and Supabase's own entity keys name them. Too long a
// key leaves the event without a subject: unordered, never refused.
func setSubject(entity, key string) string {
	return fmt.Sprintf(`    subject := %[1]s || CASE WHEN TG_OP = 'DELETE' THEN %[2]s ELSE %[3]s END;
    IF octet_length(subject) > %[4]d THEN
        subject := NULL;
    END IF;
`, quoteLiteral(entity+":"), textValue(col("OLD", key)), textValue(col("NEW", key)), outbox.SubjectMaxLength)
}

// function is the DDL of a capture function with body, between CREATE and
// the triggers; the body's dollar-quote tag is chosen later (withBodyTag).
func function(ident, declare, body string) string {
	return fmt.Sprintf(`
CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS %s
DECLARE
%s
BEGIN
%s
    RETURN NULL;
END;
%s;`, ident, bodyTag, declare, body, bodyTag)
}

// withBodyTag dollar-quotes the function body of ddl, written between two
// bodyTag markers, with a tag that no name in it contains, so that no column
// name can end the body, whatever characters it holds.
func withBodyTag(ddl string) string {
	tag := "$capture$"
	for i := 0; strings.Contains(ddl, tag); i++ {
		tag = fmt.Sprintf("$capture%d$", i)
	}
	return strings.ReplaceAll(ddl, bodyTag, tag)
}

// bodyTag stands for the body's dollar-quote tag until it is chosen: no
// identifier or literal can hold a NUL.
const bodyTag = "\x00"

// camelCase turns primary_email into primaryEmail, as Logto names fields.
func camelCase(column string) string {
	parts := strings.Split(column, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// quoteLiteral quotes s as a string literal, as standard_conforming_strings
// = on reads it (captureTx sets it for the install, function for the body).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func quoteLiterals(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = quoteLiteral(v)
	}
	return strings.Join(quoted, ", ")
}

func identList(names []string) string {
	quoted := make([]string, len(names))
	for i, name := range names {
		quoted[i] = pgx.Identifier{name}.Sanitize()
	}
	return strings.Join(quoted, ", ")
}
