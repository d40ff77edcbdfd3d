package capture

import (
	"fmt"

	"github.com/jackc/pgx/v5"
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

// sql is the SQL of the flag on the jsonb data, in style st. It casts
// nothing that could fail: a value that is no boolean, number or time (the
// column's type changed since install) does not hold the flag.
func (f *flag) sql(data string, st style) string {
	value := fmt.Sprintf("(%s->%s)", data, quoteLiteral(f.key))
	switch f.when {
	case "true":
		return fmt.Sprintf("coalesce(%s = 'true'::jsonb, false)", value)
	case "future":
		if st.unixMS {
			return fmt.Sprintf("coalesce(CASE WHEN jsonb_typeof(%[1]s) = 'number' THEN %[1]s::numeric > extract(epoch FROM now()) * 1000 END, false)", value)
		}
		// Silent: a string that is no time is no error.
		return fmt.Sprintf(`coalesce(%[1]s = '"infinity"'::jsonb OR jsonb_path_exists_tz(%[1]s, '$ ? (@.datetime() > $now.datetime())', jsonb_build_object('now', now()), true), false)`, value)
	}
	return fmt.Sprintf("(%s->>%s) IS NOT NULL", data, quoteLiteral(f.key))
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
		// The entity's children: by its key, in its tenant.
		where := fmt.Sprintf("%s = %s", col("c", inc.by), col(row, e.key))
		if e.tenant != "" {
			where += fmt.Sprintf(" AND %s = %s", col("c", e.tenant), col(row, e.tenant))
		}
		data += fmt.Sprintf(" || jsonb_build_object(%s, (SELECT coalesce(jsonb_agg(%s ORDER BY %s), '[]') FROM %s c WHERE %s))",
			quoteLiteral(inc.key), jsonObject(inc.table, "c", inc.columns, st), col("c", inc.columns[0].name),
			inc.table.ident.Sanitize(), where)
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
// <Entity>.Data.Updated when anything else did, or when alsoChanged (SQL)
// holds; published is set when one was published.
func (c *Capturer) updateEvents(e *entity, st style, tenant, alsoChanged string) string {
	publish := func(event string) string {
		return fmt.Sprintf("%s\n            PERFORM %s(%s, after, context, %s, subject);\n            published := true;",
			fitData("after", "context"), c.publishIdent(), quoteLiteral(e.name+event), tenant)
	}
	changed := e.changed("before", "after")
	if alsoChanged != "" {
		changed = fmt.Sprintf("(%s) OR %s", changed, alsoChanged)
	}
	events := fmt.Sprintf(`IF %s THEN
            %s
        END IF;`, changed, publish(".Data.Updated"))
	if e.suspended != nil {
		events = fmt.Sprintf(`IF %s IS DISTINCT FROM %s THEN
            %s
        END IF;
        %s`, e.suspended.sql("before", st), e.suspended.sql("after", st), publish(".SuspensionStatus.Updated"), events)
	}
	if e.deleted == nil {
		return events
	}
	return fmt.Sprintf(`IF %s AND NOT %s THEN
            %s
        ELSE
        %s
        END IF;`, e.deleted.sql("after", st), e.deleted.sql("before", st), publish(".Deleted"), events)
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
        PERFORM %[8]s(%[9]s, after, context, tenant, subject);
    ELSIF TG_OP = 'DELETE' THEN
        before := %[5]s;
        %[10]s
        PERFORM %[8]s(%[11]s, before, context || jsonb_build_object('entityId', before->%[12]s), tenant, subject);
    ELSE
        before := %[5]s;
        after := %[6]s;
        %[13]s
    END IF;`,
		tableCheck(e.table), e.tenantSQL("OLD"), e.tenantSQL("NEW"), skipTenant(e.skipTenants, "tenant"),
		e.build("OLD", st, false), e.build("NEW", st, false), fitData("after", "context"),
		c.publishIdent(), quoteLiteral(e.name+".Created"),
		fitData("before", "context"), quoteLiteral(e.name+".Deleted"), quoteLiteral(e.keyName(st)),
		c.updateEvents(e, st, "tenant", ""))
	return function(c.functionIdent(e.table), entityDeclare, setSubject(e.name, e.key)+body) + fmt.Sprintf(`
CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s
    FOR EACH ROW EXECUTE FUNCTION %s();`, c.triggerName(""), e.table.ident.Sanitize(), c.functionIdent(e.table))
}

const entityDeclare = `    before jsonb;
    after jsonb;
    context jsonb := '{}';
    tenant text;
    published boolean := false;
    id text;
    state text;
    subject text;`

// keyName is the data key of the entity's key column.
func (e *entity) keyName(st style) string {
	for _, c := range e.columns {
		if c.name == e.key {
			return c.key
		}
	}
	return st.key(e.key)
}

// sameEntity is the SQL condition that row r of the entity's table is the
// entity that row names in its columns key and tenant: by its full key, in
// its tenant.
func (e *entity) sameEntity(row, key, tenant string) string {
	cond := fmt.Sprintf("%s = %s", col("r", e.key), col(row, key))
	if e.tenant != "" {
		cond += fmt.Sprintf(" AND %s = %s", col("r", e.tenant), col(row, tenant))
	}
	return cond
}

// entityID is the SQL of the text that names, in the transaction's notes,
// the entity that row names in its columns key and tenant.
func (e *entity) entityID(row, key, tenant string) string {
	if e.tenant == "" {
		return textValue(col(row, key))
	}
	return fmt.Sprintf("jsonb_build_array(%s, %s)::text", textValue(col(row, tenant)), textValue(col(row, key)))
}

// The transaction's notes of its per-transaction entities (capture_published,
// which only the capture role can read or write): what each decided, or that
// the transaction changed it ('T') or a child of it ('C') before it did;
// stateOf reads the entity's into state; note writes it, and deletes a few
// notes of ended transactions, skipping those another transaction is
// deleting.
func (c *Capturer) stateOf(e *entity) string {
	return fmt.Sprintf(`state := (SELECT s.state FROM %s s WHERE s.xid = pg_current_xact_id() AND s.capture = %s AND s.entity = id);`,
		c.publishedIdent(), quoteLiteral(c.functionName(e.table.name)))
}

func (c *Capturer) note(e *entity, state string) string {
	published := c.publishedIdent()
	return fmt.Sprintf(`INSERT INTO %[1]s AS s (xid, capture, entity, state) VALUES (pg_current_xact_id(), %[2]s, id, %[3]s)
        ON CONFLICT (xid, capture, entity) DO UPDATE SET state = EXCLUDED.state;
    IF pg_current_xact_id()::text::bigint %% %[4]d = 0 THEN
        DELETE FROM %[1]s WHERE ctid = ANY (ARRAY(
            SELECT s.ctid FROM %[1]s s WHERE s.xid < pg_snapshot_xmin(pg_current_snapshot()) LIMIT %[5]d FOR UPDATE SKIP LOCKED));
    END IF;`,
		published, quoteLiteral(c.functionName(e.table.name)), state, notesCleanEvery, notesCleanedMax)
}

// One transaction in notesCleanEvery deletes at most notesCleanedMax notes
// of ended transactions: more than that many transactions write, so that
// notes never pile up, and most transactions delete none.
const (
	notesCleanEvery = 8
	notesCleanedMax = 128
)

func (c *Capturer) publishedIdent() string {
	return pgx.Identifier{c.schema, "capture_published"}.Sanitize()
}

// perTransactionDDL is the trigger functions and triggers of an entity that
// publishes once per transaction: a deferred constraint trigger on its table
// and on each included table runs at commit, and the first change of an
// entity in the transaction decides its event, comparing the entity before
// that change with the entity as it is at commit, then notes that it did.
// An entity with includes also has an immediate trigger, which notes that
// the transaction changed it, so that a child's change that comes first
// leaves the decision to the entity's own trigger. A sign-up that writes a
// user, then its identity, then the user again is one <Entity>.Created, with
// the identity; a soft delete that also changes the identities is one
// <Entity>.Deleted.
func (c *Capturer) perTransactionDDL(e *entity, st style) string {
	readBack := func(row string) string {
		return fmt.Sprintf(`SELECT %s, %s INTO after, tenant FROM %s r WHERE %s;`,
			e.build("r", st, true), e.tenantSQL("r"), e.table.ident.Sanitize(), e.sameEntity(row, e.key, e.tenant))
	}
	touch := ""
	if len(e.includes) > 0 {
		// The entity's immediate trigger notes that the transaction
		// changed it, for its includes' functions.
		touch = fmt.Sprintf(`IF TG_NAME = %s THEN
        INSERT INTO %s (xid, capture, entity, state) VALUES (pg_current_xact_id(), %s, id, 'T') ON CONFLICT DO NOTHING;
        RETURN NULL;
    END IF;`, quoteLiteral(c.triggerNameRaw("_touch")), c.publishedIdent(), quoteLiteral(c.functionName(e.table.name)))
	}
	body := fmt.Sprintf(`    %[1]s
    IF TG_OP = 'DELETE' THEN
        id := %[2]s;
    ELSE
        id := %[3]s;
    END IF;
    %[19]s
    %[4]s
    IF state IN ('P', 'Q') THEN
        RETURN NULL; -- decided at the entity's first change in the transaction
    END IF;
    %[5]s
    IF TG_OP = 'DELETE' THEN
        %[6]s
    ELSE
        %[7]s
    END IF;
    IF after IS NULL THEN
        -- Gone at commit; created and gone in the transaction is nothing to tell.
        IF TG_OP <> 'INSERT' THEN
            before := %[8]s;
            tenant := %[9]s;
            %[10]s
            %[11]s
            PERFORM %[12]s(%[13]s, before, context || jsonb_build_object('entityId', before->%[14]s), tenant, subject);
            published := true;
        END IF;
    ELSE
        %[10]s
        IF TG_OP = 'INSERT' THEN
            %[15]s
            PERFORM %[12]s(%[16]s, after, context, tenant, subject);
            published := true;
        ELSE
            before := %[8]s;
            %[17]s
        END IF;
    END IF;
    %[18]s`,
		tableCheck(e.table), e.entityID("OLD", e.key, e.tenant), e.entityID("NEW", e.key, e.tenant), c.stateOf(e),
		typeCheck(e.compared()), readBack("OLD"), readBack("NEW"),
		e.build("OLD", st, false), e.tenantSQL("OLD"), skipTenant(e.skipTenants, "tenant"), fitData("before", "context"),
		c.publishIdent(), quoteLiteral(e.name+".Deleted"), quoteLiteral(e.keyName(st)), fitData("after", "context"),
		quoteLiteral(e.name+".Created"), c.updateEvents(e, st, "tenant", "state = 'C'"), c.note(e, "CASE WHEN published THEN 'P' ELSE 'Q' END"), touch)
	ddl := function(c.functionIdent(e.table), entityDeclare, setSubject(e.name, e.key)+body) + fmt.Sprintf(`
CREATE CONSTRAINT TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION %s();`, c.triggerName(""), e.table.ident.Sanitize(), c.functionIdent(e.table))
	if touch != "" {
		ddl += fmt.Sprintf(`
CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s
    FOR EACH ROW EXECUTE FUNCTION %s();`, c.triggerName("_touch"), e.table.ident.Sanitize(), c.functionIdent(e.table))
	}
	for _, inc := range e.includes {
		ddl += c.includeDDL(e, inc, st)
	}
	return ddl
}

// compared are the columns the entity's functions compare: its key and
// tenant, and its includes' columns that hold them.
func (e *entity) compared() []tableColumn {
	compared := []tableColumn{{e.table, e.key}}
	if e.tenant != "" {
		compared = append(compared, tableColumn{e.table, e.tenant})
	}
	for _, inc := range e.includes {
		compared = append(compared, tableColumn{inc.table, inc.by})
		if e.tenant != "" {
			compared = append(compared, tableColumn{inc.table, e.tenant})
		}
	}
	return compared
}

// includeDDL is the deferred trigger function and trigger of an included
// table: a change to a child row, but for its quiet columns, is the owning
// entity's <Entity>.Data.Updated, unless the entity's event is decided
// otherwise in the transaction: when the transaction changed the entity
// too, the entity's own trigger (still to run, or run already) decides,
// knowing that a child changed.
func (c *Capturer) includeDDL(e *entity, inc *include, st style) string {
	quiet := "ARRAY[" + quoteLiterals(inc.quiet) + "]::text[]"
	childData := func(row string) string { return jsonObject(inc.table, row, inc.columns, st) }
	readBack := func(row string) string {
		return fmt.Sprintf(`SELECT %s, %s INTO after, tenant FROM %s r WHERE %s;`,
			e.build("r", st, true), e.tenantSQL("r"), e.table.ident.Sanitize(), e.sameEntity(row, inc.by, e.tenant))
	}
	body := fmt.Sprintf(`    %[1]s
    IF TG_OP = 'UPDATE' THEN
        IF %[2]s - %[4]s IS NOT DISTINCT FROM %[3]s - %[4]s THEN
            RETURN NULL;
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        id := %[5]s;
    ELSE
        id := %[6]s;
    END IF;
    %[7]s
    IF state IN ('P', 'C') THEN
        RETURN NULL;
    END IF;
    IF state = 'T' THEN
        %[8]s
        RETURN NULL;
    END IF;
    %[9]s
    IF TG_OP = 'DELETE' THEN
        %[10]s
    ELSE
        %[11]s
    END IF;
    IF after IS NULL THEN
        RETURN NULL; -- its owner is gone, and says so itself
    END IF;
    %[12]s
    %[13]s
    PERFORM %[14]s(%[15]s, after, context, tenant, subject);
    %[16]s`,
		tableCheck(inc.table), childData("OLD"), childData("NEW"), quiet,
		e.entityID("OLD", inc.by, e.tenant), e.entityID("NEW", inc.by, e.tenant), c.stateOf(e), c.note(e, "'C'"),
		typeCheck(e.compared()), readBack("OLD"), readBack("NEW"), skipTenant(e.skipTenants, "tenant"),
		fitData("after", "context"), c.publishIdent(), quoteLiteral(e.name+".Data.Updated"), c.note(e, "'P'"))
	return function(c.functionIdent(inc.table), entityDeclare, setSubject(e.name, inc.by)+body) + fmt.Sprintf(`
CREATE CONSTRAINT TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION %s();`, c.triggerName(""), inc.table.ident.Sanitize(), c.functionIdent(inc.table))
}
