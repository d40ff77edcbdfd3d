package capture

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hookrelay/hookrelay/outbox"
)

// rowEvent is a table whose inserted rows are events, such as Logto's log
// of a finished sign-in: its event is fixed or picked by a column's value,
// only rows meeting its conditions publish, and the body's top level is
// built from the row's columns (or paths into its JSON columns) and from
// rows it names in other tables (the user, the application).
type rowEvent struct {
	table *captureTable
	// event is the event; or eventBy is a column whose value picks it
	// among values, which may add constants to the body.
	event   string
	eventBy string
	values  []*eventValue
	when    []*condition
	context []*contextField
	joins   []*join
	tenant  string
	skip    []string
}

type eventValue struct {
	value, event string
	constants    map[string]string
}

// source is a column of the row, or a path into a JSON column of it.
type source struct {
	column string
	path   []string
}

func (s *source) String() string { return strings.Join(append([]string{s.column}, s.path...), ".") }

// condition holds when source equals a value.
type condition struct {
	source source
	equals string
}

type contextField struct {
	key    string
	source source
}

// join is a row of another table that the row names (by source, matched to
// the table's by column, in the row's tenant), published under key.
type join struct {
	key     string
	table   *captureTable
	on      source
	by      string
	columns []column
}

// json is the SQL of the source in row as JSON.
func (s *source) json(table *captureTable, row string, st style) string {
	t := table.types[s.column]
	value := jsonValue(col(row, s.column), t, st.typed(t))
	if len(s.path) == 0 {
		return value
	}
	return fmt.Sprintf("(%s) #> %s", value, s.pathSQL())
}

// text is the SQL of the source in row as text, for the trigger's WHEN
// clause or a lookup: a JSON path's text, or the column's value.
func (s *source) text(row string) string {
	if len(s.path) == 0 {
		return col(row, s.column)
	}
	return fmt.Sprintf("(%s #>> %s)", col(row, s.column), s.pathSQL())
}

// pathSQL is the SQL of the JSON path, an array of literals.
func (s *source) pathSQL() string {
	return "ARRAY[" + quoteLiterals(s.path) + "]::text[]"
}

// reads are the columns the event's function reads of other tables, and
// compared those it compares.
func (e *rowEvent) reads() (reads, compared []tableColumn) {
	for _, j := range e.joins {
		compared = append(compared, tableColumn{j.table, j.by})
		reads = append(reads, tableColumn{j.table, j.by})
		if len(j.on.path) == 0 {
			compared = append(compared, tableColumn{e.table, j.on.column})
		}
		if e.tenant != "" {
			compared = append(compared, tableColumn{j.table, e.tenant}, tableColumn{e.table, e.tenant})
			reads = append(reads, tableColumn{j.table, e.tenant})
		}
		for _, c := range j.columns {
			reads = append(reads, tableColumn{j.table, c.name})
		}
	}
	return reads, compared
}

// rowEventDDL is the trigger function and trigger of e. Its conditions are
// the trigger's WHEN clause, so that a row that is no event (most of a busy
// log) costs the insert no function call. The trigger is deferred: the rows
// it joins are read as they are at commit (a sign-in that inserts its
// session, then updates its user, publishes the user updated).
func (c *Capturer) rowEventDDL(e *rowEvent, st style) string {
	var when []string
	if e.eventBy != "" {
		values := make([]string, len(e.values))
		for i, v := range e.values {
			values[i] = v.value
		}
		when = append(when, fmt.Sprintf("%s IN (%s)", col("NEW", e.eventBy), quoteLiterals(values)))
	}
	for _, cond := range e.when {
		when = append(when, fmt.Sprintf("%s = %s", cond.source.text("NEW"), quoteLiteral(cond.equals)))
	}
	whenClause := ""
	if len(when) > 0 {
		whenClause = "\n    WHEN (" + strings.Join(when, " AND ") + ")"
	}

	event := quoteLiteral(e.event)
	extra := "'{}'::jsonb"
	if e.eventBy != "" {
		var events, extras []string
		for _, v := range e.values {
			events = append(events, fmt.Sprintf("WHEN %s THEN %s", quoteLiteral(v.value), quoteLiteral(v.event)))
			var parts []string
			for _, key := range slices.Sorted(maps.Keys(v.constants)) {
				parts = append(parts, quoteLiteral(key)+", "+quoteLiteral(v.constants[key]))
			}
			extras = append(extras, fmt.Sprintf("WHEN %s THEN jsonb_build_object(%s)", quoteLiteral(v.value), strings.Join(parts, ", ")))
		}
		value := textValue(col("NEW", e.eventBy))
		event = fmt.Sprintf("CASE %s %s END", value, strings.Join(events, " "))
		extra = fmt.Sprintf("CASE %s %s END", value, strings.Join(extras, " "))
	}
	fields := make([]string, len(e.context))
	for i, f := range e.context {
		fields[i] = quoteLiteral(f.key) + ", " + f.source.json(e.table, "NEW", st)
	}
	tenant := "NULL"
	if e.tenant != "" {
		tenant = fmt.Sprintf("nullif(%s, '')", textValue(col("NEW", e.tenant)))
	}
	var joins strings.Builder
	for _, j := range e.joins {
		on := j.on.text("NEW")
		if len(j.on.path) > 0 {
			// A JSON path's text, as a value of the joined key's class.
			on = lookupValue(on, j.table.types[j.by].keyClass())
		}
		sameTenant := ""
		if e.tenant != "" {
			sameTenant = fmt.Sprintf(" AND %s = %s", col("j", e.tenant), col("NEW", e.tenant))
		}
		fmt.Fprintf(&joins, `
    SELECT %s INTO joined FROM %s j WHERE %s = %s%s;
    IF joined IS NOT NULL THEN
        context := context || jsonb_build_object(%s, joined);
    END IF;`, jsonObject(j.table, "j", j.columns, st), j.table.ident.Sanitize(), col("j", j.by), on, sameTenant, quoteLiteral(j.key))
	}
	_, compared := e.reads()
	body := fmt.Sprintf(`    %[1]s
    tenant := %[2]s;
    %[3]s
    -- The body's top level, without the values the row lacks.
    context := (SELECT coalesce(jsonb_object_agg(k, v), '{}') FROM jsonb_each(jsonb_build_object(%[4]s)) AS f(k, v)
                WHERE v <> 'null'::jsonb) || %[5]s;
    %[6]s%[7]s
    %[8]s
    PERFORM %[9]s(%[10]s, NULL, context, tenant,
        CASE WHEN octet_length(context->>'userId') <= %[11]d THEN 'User:' || (context->>'userId') END);`,
		tableCheck(e.table), tenant, skipTenant(e.skip, "tenant"), strings.Join(fields, ", "), extra,
		typeCheck(compared), joins.String(), fitData("context", "context"), c.publishIdent(), event, outbox.SubjectMaxLength-len("User:"))
	declare := `    context jsonb;
    joined jsonb;
    tenant text;`
	fn := c.functionIdent(e.table)
	return function(fn, declare, body) + fmt.Sprintf(`
CREATE CONSTRAINT TRIGGER %s AFTER INSERT ON %s
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW%s EXECUTE FUNCTION %s();`, c.triggerName(""), e.table.ident.Sanitize(), whenClause, fn)
}
