package capture

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox"
)

// relation is a table relating parents to children, such as a role's
// scopes: one event per parent per statement, never one per row.
type relation struct {
	table         *captureTable
	event         string
	parent, child string // the relation's columns
	// parents holds the parents (a parent deleted with its relations gets
	// no event); parentKey names the parent's id in the body.
	parents   *captureTable
	parentKey string
	// children, when set, holds the children, and the event's data is the
	// parent's children after the change, as childColumns.
	children     *captureTable
	childColumns []column
	// members, when set, makes the event a membership delta: added<members>
	// and removed<members> lists of child ids.
	members     string
	tenant      string
	skipTenants []string
}

// Bounds of a relation event: a membership list holds at most
// outbox.MembershipIDsMax ids, as Logto's own; the data of children at most
// relationChildrenMax of them and relationDataMaxBytes of their JSON, in id
// order; "truncated": true says a list was cut. No relation change can then
// make an event too large and fail.
const (
	relationChildrenMax  = 1000
	relationDataMaxBytes = 128 << 10
)

// reads are the columns the relation's function reads of other tables, and
// compared those it compares.
func (r *relation) reads() (reads, compared []tableColumn) {
	compared = []tableColumn{{r.table, r.parent}, {r.table, r.child}, {r.parents, "id"}}
	reads = []tableColumn{{r.table, r.parent}, {r.table, r.child}, {r.parents, "id"}}
	if r.tenant != "" {
		compared = append(compared, tableColumn{r.table, r.tenant}, tableColumn{r.parents, r.tenant})
		reads = append(reads, tableColumn{r.table, r.tenant}, tableColumn{r.parents, r.tenant})
	}
	if r.children != nil {
		compared = append(compared, tableColumn{r.children, "id"})
		reads = append(reads, tableColumn{r.children, "id"})
		if r.tenant != "" {
			compared = append(compared, tableColumn{r.children, r.tenant})
			reads = append(reads, tableColumn{r.children, r.tenant})
		}
		for _, c := range r.childColumns {
			reads = append(reads, tableColumn{r.children, c.name})
		}
	}
	return reads, compared
}

// subject is the SQL of the subject of r's events, for the changed rows r:
// their parent, as the parent entity's own events name it (the event's first
// word), or none when too long.
func (r *relation) subject() string {
	entity, _, _ := strings.Cut(r.event, ".")
	subject := quoteLiteral(entity+":") + " || " + textValue("r.parent_id")
	return fmt.Sprintf("CASE WHEN octet_length(%[1]s) <= %[2]d THEN %[1]s END", subject, outbox.SubjectMaxLength)
}

// relationDDL is the trigger function and statement-level triggers of r.
// Every lookup matches the tenant, and compares columns of one key class in
// their own types: a tenant's relation row naming another tenant's parent
// or child reveals nothing of it, and no value can fail a comparison.
func (c *Capturer) relationDDL(r *relation, st style) string {
	publish := c.publishIdent()
	sameTenant := func(a, b string) string {
		if r.tenant == "" {
			return ""
		}
		return fmt.Sprintf(" AND %s = %s", a, b)
	}
	var event string
	if r.members != "" {
		// The delta, Logto's way: lists omitted when empty, each capped.
		event = fmt.Sprintf(`PERFORM %[1]s(%[2]s, NULL, jsonb_strip_nulls(jsonb_build_object(
            %[3]s, r.parent_id,
            %[4]s, to_jsonb(r.added[1:%[6]d]),
            %[5]s, to_jsonb(r.removed[1:%[6]d]),
            'truncated', CASE WHEN cardinality(r.added) > %[6]d OR cardinality(r.removed) > %[6]d THEN true END)), r.tenant_id, %[7]s);`,
			publish, quoteLiteral(r.event), quoteLiteral(r.parentKey),
			quoteLiteral("added"+r.members), quoteLiteral("removed"+r.members), outbox.MembershipIDsMax, r.subject())
	} else {
		// The parent's children after the change, of the parent's tenant
		// only, bounded.
		event = fmt.Sprintf(`SELECT coalesce(jsonb_agg(c.o ORDER BY c.n) FILTER (WHERE c.n <= %[9]d AND c.bytes <= %[10]d), '[]'),
               coalesce(bool_or(c.n > %[9]d OR c.bytes > %[10]d), false)
        INTO children, truncated
        FROM (
            SELECT o, row_number() OVER w AS n, sum(octet_length(o::text)) OVER w AS bytes
            FROM (SELECT c.id, %[3]s AS o
                  FROM %[4]s rel JOIN %[5]s c ON c.id = rel.%[6]s%[11]s
                  WHERE rel.%[7]s = r.parent%[12]s) c
            WINDOW w AS (ORDER BY c.id)
        ) c;
        PERFORM %[1]s(%[2]s, children,
            jsonb_strip_nulls(jsonb_build_object(%[8]s, r.parent_id, 'truncated', CASE WHEN truncated THEN true END)), r.tenant_id, %[13]s);`,
			publish, quoteLiteral(r.event), jsonObject(r.children, "c", r.childColumns, st),
			r.table.ident.Sanitize(), r.children.ident.Sanitize(),
			pgx.Identifier{r.child}.Sanitize(), pgx.Identifier{r.parent}.Sanitize(), quoteLiteral(r.parentKey),
			relationChildrenMax, relationDataMaxBytes,
			sameTenant(col("c", r.tenant), col("rel", r.tenant)), sameTenant(col("rel", r.tenant), "r.tenant"), r.subject())
	}
	// The changed rows as (tenant, parent, child, added), in their types.
	changed := func(rows string) string {
		tenant := "NULL::text"
		if r.tenant != "" {
			tenant = col("x", r.tenant)
		}
		return fmt.Sprintf("SELECT %s AS tenant, %s AS parent, %s AS child FROM %s x", tenant, col("x", r.parent), col("x", r.child), rows)
	}
	skip := ""
	if len(r.skipTenants) > 0 {
		skip = fmt.Sprintf(" AND %s NOT IN (%s)", textValue("c.tenant"), quoteLiterals(r.skipTenants))
	}
	// One event per parent changed, of a parent that still exists: a parent
	// deleted with its relations gets its own .Deleted only.
	loop := func(changes string) string {
		return fmt.Sprintf(`FOR r IN
            SELECT c.tenant, c.parent, nullif(%[1]s, '') AS tenant_id, %[2]s AS parent_id,
                   array_agg(%[3]s ORDER BY c.child) FILTER (WHERE c.added) AS added,
                   array_agg(%[3]s ORDER BY c.child) FILTER (WHERE NOT c.added) AS removed
            FROM (%[4]s) c
            WHERE EXISTS (SELECT FROM %[5]s p WHERE p.id = c.parent%[6]s)%[7]s
            GROUP BY c.tenant, c.parent
            ORDER BY c.parent
        LOOP
            %[8]s
        END LOOP;`,
			textValue("c.tenant"), textValue("c.parent"), textValue("c.child"), changes,
			r.parents.ident.Sanitize(), sameTenant(col("p", r.tenant), "c.tenant"), skip, event)
	}
	_, compared := r.reads()
	body := fmt.Sprintf(`    %[1]s
    %[2]s
    -- Transition tables: new_rows exists on insert and update, old_rows on
    -- update and delete.
    IF TG_OP = 'INSERT' THEN
        %[3]s
    ELSIF TG_OP = 'DELETE' THEN
        %[4]s
    ELSE
        %[5]s
    END IF;`,
		tableCheck(r.table), typeCheck(compared),
		loop(fmt.Sprintf("SELECT d.*, true AS added FROM (%s) d", changed("new_rows"))),
		loop(fmt.Sprintf("SELECT d.*, false AS added FROM (%s) d", changed("old_rows"))),
		loop(fmt.Sprintf("SELECT d.*, true AS added FROM (%[1]s EXCEPT %[2]s) d UNION ALL SELECT d.*, false FROM (%[2]s EXCEPT %[1]s) d",
			changed("new_rows"), changed("old_rows"))))
	declare := `    children jsonb;
    truncated boolean;
    r record;`
	fn := c.functionIdent(r.table)
	return function(fn, declare, body) + fmt.Sprintf(`
CREATE TRIGGER %[1]s AFTER INSERT ON %[4]s
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %[5]s();
CREATE TRIGGER %[2]s AFTER UPDATE ON %[4]s
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %[5]s();
CREATE TRIGGER %[3]s AFTER DELETE ON %[4]s
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION %[5]s();`,
		c.triggerName("_insert"), c.triggerName("_update"), c.triggerName("_delete"), r.table.ident.Sanitize(), fn)
}
