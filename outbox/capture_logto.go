package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PresetLogto captures a self-hosted Logto database: every data hook event
// Logto sends, published in the transaction that made the change, whoever
// made it, with the bodies Logto sends.
const PresetLogto = "logto"

// MembershipIDsMax caps each list of ids of an Organization.Membership.Updated
// event, as Logto does, so that one bulk change cannot make an oversized
// event; "truncated": true says a list was cut.
const MembershipIDsMax = 5000

// PresetResult says what InstallPreset installed and which tables it skipped.
type PresetResult struct {
	Preset    string       `json:"preset"`
	Installed []*Capture   `json:"installed"`
	Skipped   []PresetSkip `json:"skipped,omitempty"`
}

// PresetSkip is a table of the preset that was not captured, and why.
type PresetSkip struct {
	Table  string `json:"table"`
	Reason string `json:"reason"`
}

// logtoEntity is a Logto table whose rows are entities: <Entity>.Created,
// .Data.Updated and .Deleted, one per row, with the entity as data.
type logtoEntity struct {
	table  string
	entity string
	// columns are the public fields, published when the table has them (an
	// older Logto lacks some); no other column ever is.
	columns []string
	// quiet columns are published, but a change to them alone is no event.
	quiet []string
	// suspension, when set, is the column whose change is
	// <Entity>.SuspensionStatus.Updated rather than a data update.
	suspension string
}

// logtoEntities follow Logto's entities; users' columns are its
// userInfoSelectFields, which leave out password_encrypted,
// password_encryption_method, mfa_verifications and logto_config.
var logtoEntities = []logtoEntity{ //nolint:gochecknoglobals // a read-only table
	{
		table: "users", entity: "User",
		columns: []string{
			"id", "username", "primary_email", "primary_phone", "name", "avatar", "custom_data", "identities",
			"last_sign_in_at", "created_at", "updated_at", "profile", "application_id", "cimd_client_id", "is_suspended",
		},
		quiet:      []string{"last_sign_in_at", "updated_at"},
		suspension: "is_suspended",
	},
	{table: "roles", entity: "Role", columns: []string{"id", "name", "description", "type", "is_default"}},
	{table: "scopes", entity: "Scope", columns: []string{"id", "resource_id", "name", "description", "created_at"}},
	{
		table: "organizations", entity: "Organization",
		columns: []string{
			"id", "name", "description", "custom_data", "is_mfa_required", "is_trusted_device_allowed",
			"color", "branding", "custom_css", "created_at",
		},
	},
	{table: "organization_roles", entity: "OrganizationRole", columns: []string{"id", "name", "description", "type"}},
	{table: "organization_scopes", entity: "OrganizationScope", columns: []string{"id", "name", "description"}},
}

// logtoRelation is a Logto table relating a parent to children: one event
// per parent per statement, never one per row.
type logtoRelation struct {
	table string
	event string
	// parent and child are the relation's columns; parentTable holds the
	// parents (a parent deleted with its relations gets no event) and key
	// names the parent's id in the body.
	parent, child, parentTable, key string
	// childTable, when set, holds the children, and the event's data is the
	// parent's children after the change, as that table's entity.
	childTable string
	// members, when set, makes the event a membership delta: added<members>
	// and removed<members> lists of child ids.
	members string
}

var logtoRelations = []logtoRelation{ //nolint:gochecknoglobals // a read-only table
	{
		table: "roles_scopes", event: EventRoleScopesUpdated,
		parent: "role_id", child: "scope_id", parentTable: "roles", key: "roleId", childTable: "scopes",
	},
	{
		table: "organization_role_scope_relations", event: EventOrganizationRoleScopesUpdated,
		parent: "organization_role_id", child: "organization_scope_id", parentTable: "organization_roles",
		key: "organizationRoleId", childTable: "organization_scopes",
	},
	{
		table: "organization_user_relations", event: EventOrganizationMembershipUpdated,
		parent: "organization_id", child: "user_id", parentTable: "organizations", key: "organizationId", members: "UserIds",
	},
	{
		table: "organization_application_relations", event: EventOrganizationMembershipUpdated,
		parent: "organization_id", child: "application_id", parentTable: "organizations", key: "organizationId", members: "ApplicationIds",
	},
}

// InstallPreset installs the captures of preset (PresetLogto) on the tables
// of tableSchema (default public), in one transaction, replacing earlier
// captures of those tables. A table the database lacks (an older Logto) is
// skipped and reported; a database with none of them is an error.
func (s *Store) InstallPreset(ctx context.Context, preset, tableSchema string) (*PresetResult, error) {
	if preset != PresetLogto {
		return nil, invalid("preset", "%q: the one preset is %s", preset, PresetLogto)
	}
	if tableSchema == "" {
		tableSchema = "public"
	}
	if tableSchema == s.schema {
		return nil, invalid("table schema", "%s is hookrelay's own schema; give the schema of Logto's tables", tableSchema)
	}
	result := &PresetResult{Preset: preset, Installed: []*Capture{}}
	err := s.captureTx(ctx, func(tx pgx.Tx) error {
		p := &presetInstall{s: s, tx: tx, schema: tableSchema, result: result}
		for i := range logtoEntities {
			if err := p.entity(ctx, &logtoEntities[i]); err != nil {
				return err
			}
		}
		for i := range logtoRelations {
			if err := p.relation(ctx, &logtoRelations[i]); err != nil {
				return err
			}
		}
		if len(result.Installed) == 0 {
			return invalid("table schema", "schema %q holds none of Logto's tables (users, roles, …); give the schema of a Logto database with --table-schema", tableSchema)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// RemovePreset removes every capture preset installed and returns them.
func (s *Store) RemovePreset(ctx context.Context, preset string) ([]*Capture, error) {
	var removed []*Capture
	err := s.captureTx(ctx, func(tx pgx.Tx) error {
		q := s.queries(tx)
		rows, err := q.CaptureListByPreset(ctx, &preset)
		if err != nil {
			return fmt.Errorf("list captures of preset %s: %w", preset, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("%w: preset %s is not installed", ErrCaptureNotFound, preset)
		}
		for _, row := range rows {
			table, err := s.resolveTable(ctx, q, &Capture{Table: row.TableName})
			if err != nil {
				table = nil // gone, and its triggers with it
			}
			if err := s.removeCapture(ctx, tx, row, table); err != nil {
				return err
			}
			removed = append(removed, captureFromRow(row))
		}
		return nil
	})
	return removed, err
}

type presetInstall struct {
	s      *Store
	tx     pgx.Tx
	schema string
	result *PresetResult
}

// table resolves name in the preset's schema. It returns nil and why when
// the table is missing (an older Logto) or lacks a required column.
func (p *presetInstall) table(ctx context.Context, name string, required ...string) (*captureTable, string, error) {
	table, err := p.s.resolveTable(ctx, p.s.queries(p.tx), &Capture{Table: pgx.Identifier{p.schema, name}.Sanitize()})
	var validationErr *ValidationError
	if errors.As(err, &validationErr) {
		return nil, fmt.Sprintf("there is no table %s.%s (an older Logto?)", p.schema, name), nil
	}
	if err != nil {
		return nil, "", err
	}
	for _, column := range required {
		if !slices.Contains(table.columns, column) {
			return nil, fmt.Sprintf("%s has no column %s: not the Logto table this preset knows", table.name, column), nil
		}
	}
	return table, "", nil
}

func (p *presetInstall) skip(table, reason string) {
	p.result.Skipped = append(p.result.Skipped, PresetSkip{Table: table, Reason: reason})
}

// install installs a capture of the preset; reads are the columns its
// function reads from other tables than its own.
func (p *presetInstall) install(ctx context.Context, table *captureTable, capture *Capture, ddl string, reads []tableColumn) error {
	capture.Preset = PresetLogto
	capture.TenantColumn = "tenant_id"
	if err := p.s.prepareCaptureRole(ctx, p.tx, reads); err != nil {
		return err
	}
	installed, err := p.s.installTriggers(ctx, p.tx, table, capture, ddl)
	if err != nil {
		return err
	}
	p.result.Installed = append(p.result.Installed, installed)
	return nil
}

func (p *presetInstall) entity(ctx context.Context, e *logtoEntity) error {
	table, missing, err := p.table(ctx, e.table, "id", "tenant_id")
	if table == nil {
		p.skip(p.schema+"."+e.table, missing)
		return err
	}
	columns := presentColumns(table, e.columns)
	trigger := &rowTrigger{
		entity:       e.entity,
		build:        func(row string) string { return logtoObject(table, row, columns) },
		tenantColumn: "tenant_id",
	}
	for _, column := range append(slices.Clone(e.quiet), e.suspension) {
		if slices.Contains(columns, column) {
			trigger.quiet = append(trigger.quiet, camelCase(column))
		}
	}
	if slices.Contains(columns, e.suspension) {
		trigger.suspension = camelCase(e.suspension)
	}
	return p.install(ctx, table, &Capture{Table: table.name, Entity: e.entity, Columns: columns}, p.s.rowTriggerDDL(table, trigger), nil)
}

// Bounds of a relation event's data, the parent's children: at most
// relationChildrenMax of them and relationDataMaxBytes of their JSON, in id
// order; "truncated": true says the list was cut. No relation change can then
// make an event too large and fail.
const (
	relationChildrenMax  = 1000
	relationDataMaxBytes = 128 << 10
)

func (p *presetInstall) relation(ctx context.Context, r *logtoRelation) error {
	skip := func(missing string, err error) error {
		p.skip(p.schema+"."+r.table, missing)
		return err
	}
	table, missing, err := p.table(ctx, r.table, "tenant_id", r.parent, r.child)
	if table == nil {
		return skip(missing, err)
	}
	parents, missing, err := p.table(ctx, r.parentTable, "id", "tenant_id")
	if parents == nil {
		return skip(missing, err)
	}
	// Every column compared in a query: the relation's, and the parents'
	// and children's ids and tenants, which every lookup checks, so that a
	// tenant's relation row naming another tenant's parent or child reveals
	// nothing of it.
	compared := []tableColumn{
		{table, "tenant_id"}, {table, r.parent}, {table, r.child},
		{parents, "id"}, {parents, "tenant_id"},
	}
	reads := []tableColumn{{parents, "id"}, {parents, "tenant_id"}, {table, "tenant_id"}, {table, r.parent}, {table, r.child}}
	publish := p.s.publishIdent()
	var event string
	if r.members != "" {
		// The delta, Logto's way: lists omitted when empty, each capped.
		event = fmt.Sprintf(`PERFORM %[1]s(%[2]s, NULL, jsonb_strip_nulls(jsonb_build_object(
            %[3]s, r.parent,
            %[4]s, to_jsonb(r.added[1:%[6]d]),
            %[5]s, to_jsonb(r.removed[1:%[6]d]),
            'truncated', CASE WHEN cardinality(r.added) > %[6]d OR cardinality(r.removed) > %[6]d THEN true END)), r.tenant_id);`,
			publish, quoteLiteral(r.event), quoteLiteral(r.key),
			quoteLiteral("added"+r.members), quoteLiteral("removed"+r.members), MembershipIDsMax)
	} else {
		children, missing, err := p.table(ctx, r.childTable, "id", "tenant_id")
		if children == nil {
			return skip(missing, err)
		}
		var childEntity *logtoEntity
		for i := range logtoEntities {
			if logtoEntities[i].table == r.childTable {
				childEntity = &logtoEntities[i]
			}
		}
		childColumns := presentColumns(children, childEntity.columns)
		compared = append(compared, tableColumn{children, "id"}, tableColumn{children, "tenant_id"})
		reads = append(reads, tableColumn{children, "tenant_id"})
		for _, column := range childColumns {
			reads = append(reads, tableColumn{children, column})
		}
		// The parent's children after the change, as Logto's entities, of
		// the parent's tenant only, bounded.
		event = fmt.Sprintf(`SELECT coalesce(jsonb_agg(c.o ORDER BY c.id) FILTER (WHERE c.n <= %[9]d AND c.bytes <= %[10]d), '[]'),
               coalesce(bool_or(c.n > %[9]d OR c.bytes > %[10]d), false)
        INTO children, truncated
        FROM (
            SELECT %[11]s AS id, o, row_number() OVER w AS n, sum(octet_length(o::text)) OVER w AS bytes
            FROM (SELECT c.id, %[3]s AS o
                  FROM %[4]s rel JOIN %[5]s c ON c.id = rel.%[6]s AND c.tenant_id = rel.tenant_id
                  WHERE rel.%[7]s = r.parent AND rel.tenant_id = r.tenant_id) c
            WINDOW w AS (ORDER BY c.id)
        ) c;
        PERFORM %[1]s(%[2]s, children,
            jsonb_strip_nulls(jsonb_build_object(%[8]s, r.parent, 'truncated', CASE WHEN truncated THEN true END)), r.tenant_id);`,
			publish, quoteLiteral(r.event), logtoObject(children, "c", childColumns),
			table.ident.Sanitize(), children.ident.Sanitize(),
			pgx.Identifier{r.child}.Sanitize(), pgx.Identifier{r.parent}.Sanitize(), quoteLiteral(r.key),
			relationChildrenMax, relationDataMaxBytes, textValue("c.id"))
	}
	// Rows are [tenant, parent, child], each as text.
	row := func(rows string) string {
		return fmt.Sprintf("SELECT jsonb_build_array(%s, %s, %s) AS x FROM %s",
			textValue("tenant_id"), textValue(pgx.Identifier{r.parent}.Sanitize()), textValue(pgx.Identifier{r.child}.Sanitize()), rows)
	}
	function := p.s.functionIdent(table)
	ddl := fmt.Sprintf(`
CREATE OR REPLACE FUNCTION %[1]s() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %[2]s
DECLARE
    added jsonb := '[]';
    removed jsonb := '[]';
    children jsonb;
    truncated boolean;
    r record;
BEGIN
    %[11]s
    %[12]s
    -- Transition tables: new_rows exists on insert and update, old_rows on
    -- update and delete.
    IF TG_OP = 'INSERT' THEN
        added := (SELECT coalesce(jsonb_agg(x), '[]') FROM (%[3]s) d);
    ELSIF TG_OP = 'DELETE' THEN
        removed := (SELECT coalesce(jsonb_agg(x), '[]') FROM (%[4]s) d);
    ELSE
        added := (SELECT coalesce(jsonb_agg(x), '[]') FROM (%[3]s EXCEPT %[4]s) d);
        removed := (SELECT coalesce(jsonb_agg(x), '[]') FROM (%[4]s EXCEPT %[3]s) d);
    END IF;
    FOR r IN
        SELECT c.x->>0 AS tenant_id, c.x->>1 AS parent,
               array_agg(c.x->>2 ORDER BY c.x->>2) FILTER (WHERE c.added) AS added,
               array_agg(c.x->>2 ORDER BY c.x->>2) FILTER (WHERE NOT c.added) AS removed
        FROM (SELECT x, true AS added FROM jsonb_array_elements(added) x
              UNION ALL SELECT x, false FROM jsonb_array_elements(removed) x) c
        -- A parent deleted with its relations gets its own .Deleted only.
        WHERE EXISTS (SELECT FROM %[5]s p WHERE p.id = c.x->>1 AND p.tenant_id = c.x->>0)
        GROUP BY 1, 2
        ORDER BY 2
    LOOP
        %[6]s
    END LOOP;
    RETURN NULL;
END;
%[2]s;
CREATE TRIGGER %[7]s AFTER INSERT ON %[10]s
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %[1]s();
CREATE TRIGGER %[8]s AFTER UPDATE ON %[10]s
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %[1]s();
CREATE TRIGGER %[9]s AFTER DELETE ON %[10]s
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION %[1]s();`,
		function, bodyTag, row("new_rows"), row("old_rows"), parents.ident.Sanitize(), event,
		p.s.triggerName("_insert"), p.s.triggerName("_update"), p.s.triggerName("_delete"), table.ident.Sanitize(),
		tableCheck(table), typeCheck(compared))
	entity := strings.SplitN(r.event, ".", 2)[0]
	return p.install(ctx, table, &Capture{Table: table.name, Entity: entity, Columns: []string{r.parent, r.child}}, withBodyTag(ddl), reads)
}

// presentColumns returns the columns of want that table has, in want's order.
func presentColumns(table *captureTable, want []string) []string {
	var present []string
	for _, column := range want {
		if slices.Contains(table.columns, column) {
			present = append(present, column)
		}
	}
	return present
}

// logtoObject builds the JSON of a row as Logto sends it: camelCase keys,
// timestamps as Unix milliseconds.
func logtoObject(table *captureTable, row string, columns []string) string {
	keys := make([]string, len(columns))
	for i, column := range columns {
		keys[i] = camelCase(column)
	}
	return jsonObject(table, row, columns, keys, logtoJSON)
}

// Type OIDs of timestamp and timestamptz.
const (
	timestampOID   = 1114
	timestamptzOID = 1184
)

// logtoJSON is Logto's JSON of a built-in value: Unix milliseconds for a
// timestamp, Postgres's own JSON otherwise.
func logtoJSON(t columnType) string {
	if t.oid == timestampOID || t.oid == timestamptzOID {
		return "to_jsonb((extract(epoch FROM %s) * 1000)::bigint)"
	}
	return "to_jsonb(%s)"
}
