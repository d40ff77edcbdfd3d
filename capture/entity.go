package capture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// entity is a table whose rows are entities: <Entity>.Created,
// .Data.Updated and .Deleted, with the entity as data.
type entity struct {
	table *captureTable
	name  string // the entity, such as User
	// key is the column that identifies a row.
	key     string
	columns []column
	// tenant, when set, is the column of each row's tenant; rows of
	// skipTenants publish nothing.
	tenant      string
	skipTenants []string
	// quiet are data keys whose change alone is no data update.
	quiet []string
	// suspended, when set, is <Entity>.SuspensionStatus.Updated when it
	// changes; deleted, when set, is a soft delete: <Entity>.Deleted when
	// it becomes true.
	suspended, deleted *flag
	// includes are lists of child rows in the data (a user's identities);
	// an entity with includes publishes once per transaction.
	includes []*include
	// perTransaction makes the entity publish at most one event per
	// transaction, at commit, with its state then (see perTransactionDDL).
	perTransaction bool
}

// flag is a condition on a data key: "true" (a boolean), "set" (not null)
// or "future" (a time to come).
type flag struct {
	key  string
	when string
}

// sql is the SQL of the flag on the jsonb data, in style st.
func (f *flag) sql(data string, st style) string {
	value := fmt.Sprintf("(%s->>%s)", data, quoteLiteral(f.key))
	switch f.when {
	case "true":
		return fmt.Sprintf("coalesce(%s::boolean, false)", value)
	case "future":
		if st.unixMS {
			return fmt.Sprintf("coalesce(%s::numeric > extract(epoch FROM now()) * 1000, false)", value)
		}
		return fmt.Sprintf("coalesce(%s::timestamptz > now(), false)", value)
	}
	return value + " IS NOT NULL"
}

// include is a list of child rows in an entity's data.
type include struct {
	key     string // its data key
	table   *captureTable
	by      string // the child column that holds the entity's key
	columns []column
	// quiet are child columns whose change alone is no event.
	quiet []string
}

// build is the SQL of the entity's data from row (NEW, OLD or a row read
// back), with its includes when withIncludes.
func (e *entity) build(row string, st style, withIncludes bool) string {
	data := jsonObject(e.table, row, e.columns, st)
	if !withIncludes {
		return data
	}
	for _, inc := range e.includes {
		data += fmt.Sprintf(" || jsonb_build_object(%s, (SELECT coalesce(jsonb_agg(%s ORDER BY %s), '[]') FROM %s c WHERE %s = %s))",
			quoteLiteral(inc.key), jsonObject(inc.table, "c", inc.columns, st), col("c", inc.columns[0].name),
			inc.table.ident.Sanitize(), col("c", inc.by), col(row, e.key))
	}
	return data
}

// tenantSQL is the SQL of row's tenant, as text or NULL.
func (e *entity) tenantSQL(row string) string {
	if e.tenant == "" {
		return "NULL"
	}
	return fmt.Sprintf("nullif(%s, '')", textValue(col(row, e.tenant)))
}

// skipTenant is the statement that ends the function for a row of a skipped
// tenant; tenant is the text variable holding it.
func skipTenant(skip []string, tenant string) string {
	if len(skip) == 0 {
		return ""
	}
	return fmt.Sprintf(`IF %s IN (%s) THEN
        RETURN NULL;
    END IF;`, tenant, quoteLiterals(skip))
}

// changed is the SQL of whether two data values differ in more than their
// quiet keys, and the entity's flags, which have events of their own.
func (e *entity) changed(before, after string) string {
	quiet := append([]string(nil), e.quiet...)
	for _, f := range []*flag{e.suspended, e.deleted} {
		if f != nil {
			quiet = append(quiet, f.key)
		}
	}
	for _, inc := range e.includes {
		quiet = append(quiet, inc.key)
	}
	if len(quiet) == 0 {
		return before + " IS DISTINCT FROM " + after
	}
	keys := "ARRAY[" + quoteLiterals(quiet) + "]::text[]"
	return fmt.Sprintf("%s - %s IS DISTINCT FROM %s - %s", before, keys, after, keys)
}

// updateEvents is the statements that publish what an update from the data
// before to the data after is: <Entity>.Deleted when the soft delete flag
// came on, else <Entity>.SuspensionStatus.Updated when suspended changed and
// <Entity>.Data.Updated when anything else did; published is set when one
// was published.
func (c *Capturer) updateEvents(e *entity, st style, tenant string) string {
	var b strings.Builder
	publish := func(event string) string {
		return fmt.Sprintf("%s\n            PERFORM %s(%s, after, context, %s);\n            published := true;",
			fitData("after", "context"), c.publishIdent(), quoteLiteral(e.name+event), tenant)
	}
	if e.deleted != nil {
		fmt.Fprintf(&b, `IF %s AND NOT %s THEN
            %s
            RETURN NULL;
        END IF;
        `, e.deleted.sql("after", st), e.deleted.sql("before", st), publish(".Deleted"))
	}
	if e.suspended != nil {
		fmt.Fprintf(&b, `IF %s IS DISTINCT FROM %s THEN
            %s
        END IF;
        `, e.suspended.sql("before", st), e.suspended.sql("after", st), publish(".SuspensionStatus.Updated"))
	}
	fmt.Fprintf(&b, `IF %s THEN
            %s
        END IF;`, e.changed("before", "after"), publish(".Data.Updated"))
	return b.String()
}

// entityDDL is the trigger function and trigger of e: one event per row
// changed, in the statement that changed it.
func (c *Capturer) entityDDL(e *entity, st style) string {
	if e.perTransaction {
		return c.perTransactionDDL(e, st)
	}
	body := fmt.Sprintf(`    %[1]s
    IF TG_OP = 'DELETE' THEN
        tenant := %[2]s;
    ELSE
        tenant := %[3]s;
    END IF;
    %[4]s
    IF TG_OP = 'INSERT' THEN
        after := %[6]s;
        %[7]s
        PERFORM %[8]s(%[9]s, after, context, tenant);
    ELSIF TG_OP = 'DELETE' THEN
        before := %[5]s;
        %[10]s
        PERFORM %[8]s(%[11]s, before, context || jsonb_build_object('entityId', before->%[12]s), tenant);
    ELSE
        before := %[5]s;
        after := %[6]s;
        %[13]s
    END IF;`,
		tableCheck(e.table), e.tenantSQL("OLD"), e.tenantSQL("NEW"), skipTenant(e.skipTenants, "tenant"),
		e.build("OLD", st, false), e.build("NEW", st, false), fitData("after", "context"),
		c.publishIdent(), quoteLiteral(e.name+".Created"),
		fitData("before", "context"), quoteLiteral(e.name+".Deleted"), quoteLiteral(e.keyName(st)),
		c.updateEvents(e, st, "tenant"))
	return function(c.functionIdent(e.table), entityDeclare, body) + fmt.Sprintf(`
CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s
    FOR EACH ROW EXECUTE FUNCTION %s();`, c.triggerName(""), e.table.ident.Sanitize(), c.functionIdent(e.table))
}

const entityDeclare = `    before jsonb;
    after jsonb;
    context jsonb := '{}';
    tenant text;
    published boolean := false;
    seen text;
    id text;`

// keyName is the data key of the entity's key column.
func (e *entity) keyName(st style) string {
	for _, c := range e.columns {
		if c.name == e.key {
			return c.key
		}
	}
	return st.key(e.key)
}

// perTransactionDDL is the trigger functions and triggers of an entity that
// publishes once per transaction: a deferred constraint trigger on its table
// and on each included table runs at commit, and the first change of an
// entity in the transaction that is an event publishes it, with the entity
// as it is then. A sign-up that writes a user, then its identity, then the
// user again is one <Entity>.Created, with the identity.
func (c *Capturer) perTransactionDDL(e *entity, st style) string {
	guc := quoteLiteral("hookrelay.published_" + shortHash(e.table.name))
	// published notes, for the transaction, the entities already published;
	// it is bounded, past which an entity may publish twice.
	markPublished := fmt.Sprintf(`IF published AND length(seen) < %[1]d THEN
        PERFORM set_config(%[2]s, seen || ' ' || id || ' ', true);
    END IF;`, seenMaxBytes, guc)
	skipPublished := fmt.Sprintf(`seen := coalesce(current_setting(%s, true), '');
    IF strpos(seen, ' ' || id || ' ') > 0 THEN
        RETURN NULL;
    END IF;`, guc)
	readBack := func(byRow, byColumn string) string {
		return fmt.Sprintf(`SELECT %s, %s INTO after, tenant FROM %s r WHERE %s = %s;`,
			e.build("r", st, true), e.tenantSQL("r"), e.table.ident.Sanitize(), col("r", e.key), col(byRow, byColumn))
	}
	compared := []tableColumn{{e.table, e.key}}
	for _, inc := range e.includes {
		compared = append(compared, tableColumn{inc.table, inc.by})
	}
	body := fmt.Sprintf(`    %[1]s
    IF TG_OP = 'DELETE' THEN
        id := %[2]s;
    ELSE
        id := %[3]s;
    END IF;
    %[4]s
    %[5]s
    IF TG_OP = 'DELETE' THEN
        %[6]s
    ELSE
        %[7]s
    END IF;
    IF after IS NULL THEN
        -- Created and gone in the transaction: nothing to tell.
        IF TG_OP = 'INSERT' THEN
            published := true;
        ELSE
            before := %[8]s;
            tenant := %[9]s;
            %[10]s
            %[11]s
            PERFORM %[12]s(%[13]s, before, context || jsonb_build_object('entityId', before->%[14]s), tenant);
            published := true;
        END IF;
    ELSE
        %[10]s
        IF TG_OP = 'INSERT' THEN
            %[15]s
            PERFORM %[12]s(%[16]s, after, context, tenant);
            published := true;
        ELSE
            before := %[8]s;
            %[17]s
        END IF;
    END IF;
    %[18]s`,
		tableCheck(e.table), textValue(col("OLD", e.key)), textValue(col("NEW", e.key)), skipPublished,
		typeCheck(compared), readBack("OLD", e.key), readBack("NEW", e.key),
		e.build("OLD", st, false), e.tenantSQL("OLD"), skipTenant(e.skipTenants, "tenant"), fitData("before", "context"),
		c.publishIdent(), quoteLiteral(e.name+".Deleted"), quoteLiteral(e.keyName(st)), fitData("after", "context"),
		quoteLiteral(e.name+".Created"), c.updateEvents(e, st, "tenant"), markPublished)
	ddl := function(c.functionIdent(e.table), entityDeclare, body) + fmt.Sprintf(`
CREATE CONSTRAINT TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION %s();`, c.triggerName(""), e.table.ident.Sanitize(), c.functionIdent(e.table))
	for _, inc := range e.includes {
		ddl += c.includeDDL(e, inc, st, guc, skipPublished, markPublished, compared)
	}
	return ddl
}

// seenMaxBytes bounds the transaction's note of published entities.
const seenMaxBytes = 16 << 10

// includeDDL is the deferred trigger function and trigger of an included
// table: a change to a child row, but for its quiet columns, is the owning
// entity's <Entity>.Data.Updated, unless the entity was published in the
// transaction already.
func (c *Capturer) includeDDL(e *entity, inc *include, st style, guc, skipPublished, markPublished string, compared []tableColumn) string {
	quiet := "ARRAY[" + quoteLiterals(inc.quiet) + "]::text[]"
	childData := func(row string) string { return jsonObject(inc.table, row, inc.columns, st) }
	body := fmt.Sprintf(`    %[1]s
    IF TG_OP = 'DELETE' THEN
        id := %[2]s;
    ELSE
        id := %[3]s;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF %[4]s - %[6]s IS NOT DISTINCT FROM %[5]s - %[6]s THEN
            RETURN NULL;
        END IF;
    END IF;
    %[7]s
    %[8]s
    IF TG_OP = 'DELETE' THEN
        SELECT %[9]s, %[10]s INTO after, tenant FROM %[11]s r WHERE %[12]s = %[13]s;
    ELSE
        SELECT %[9]s, %[10]s INTO after, tenant FROM %[11]s r WHERE %[12]s = %[14]s;
    END IF;
    IF after IS NULL THEN
        RETURN NULL; -- its owner is gone, and says so itself
    END IF;
    %[15]s
    %[16]s
    PERFORM %[17]s(%[18]s, after, context, tenant);
    published := true;
    %[19]s`,
		tableCheck(inc.table), textValue(col("OLD", inc.by)), textValue(col("NEW", inc.by)),
		childData("OLD"), childData("NEW"), quiet, skipPublished, typeCheck(compared),
		e.build("r", st, true), e.tenantSQL("r"), e.table.ident.Sanitize(), col("r", e.key),
		col("OLD", inc.by), col("NEW", inc.by), skipTenant(e.skipTenants, "tenant"), fitData("after", "context"),
		c.publishIdent(), quoteLiteral(e.name+".Data.Updated"), markPublished)
	return function(c.functionIdent(inc.table), entityDeclare, body) + fmt.Sprintf(`
CREATE CONSTRAINT TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION %s();`, c.triggerName(""), inc.table.ident.Sanitize(), c.functionIdent(inc.table))
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
