package capture

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/hookrelay/hookrelay/capture/internal/dbsqlc"
	"github.com/hookrelay/hookrelay/outbox"
)

// Preset is a capture preset as its file says it: which tables of an auth
// server's database publish which events, with which bodies. Presets are
// data: presets/logto.yaml and presets/supabase.yaml are the built-in ones,
// and ParsePreset reads a user's own (a mapping file) the same way.
type Preset struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Schema is the schema of the tables, unless the install says
	// otherwise. Defaults to public.
	Schema string `yaml:"schema"`
	// Tenant is the column of every table that holds the row's tenant, if
	// the database has tenants; rows of SkipTenants publish nothing.
	Tenant      string   `yaml:"tenant"`
	SkipTenants []string `yaml:"skipTenants"`
	// Keys are the body's keys: camelCase (primary_email → primaryEmail, the
	// default) or asIs (the column names).
	Keys string `yaml:"keys"`
	// Timestamps are rfc3339 (the default) or unixMs.
	Timestamps string             `yaml:"timestamps"`
	Entities   []*EntityMapping   `yaml:"entities"`
	Relations  []*RelationMapping `yaml:"relations"`
	Rows       []*RowMapping      `yaml:"rows"`
}

// EntityMapping is a table whose rows are entities: <Entity>.Created,
// .Data.Updated and .Deleted, with the entity as data.
type EntityMapping struct {
	Table  string `yaml:"table"`
	Entity string `yaml:"entity"`
	// Key is the column identifying a row. Defaults to id.
	Key string `yaml:"key"`
	// Columns are the published columns, "column" or "column as key"; no
	// other column ever is, and those the table lacks are left out.
	Columns []string `yaml:"columns"`
	// Quiet are columns whose change alone is no event.
	Quiet []string `yaml:"quiet"`
	// Suspended is <Entity>.SuspensionStatus.Updated when it changes;
	// Deleted a soft delete, <Entity>.Deleted when it becomes true.
	Suspended *FlagMapping `yaml:"suspended"`
	Deleted   *FlagMapping `yaml:"deleted"`
	// Include are lists of child rows in the data; an entity with any
	// publishes once per transaction.
	Include []*IncludeMapping `yaml:"include"`
	// PerTransaction: at most one event per entity per transaction, at
	// commit, with the entity as it is then.
	PerTransaction bool `yaml:"perTransaction"`
}

// FlagMapping is a condition on a published column: when "true" (a
// boolean), "set" (not null) or "future" (a time to come).
type FlagMapping struct {
	Column string `yaml:"column"`
	When   string `yaml:"when"`
}

// IncludeMapping is a list of child rows in an entity's data.
type IncludeMapping struct {
	// As is the list's key in the data.
	As    string `yaml:"as"`
	Table string `yaml:"table"`
	// By is the child column that holds the entity's key.
	By      string   `yaml:"by"`
	Columns []string `yaml:"columns"`
	// Quiet are child columns whose change alone is no event.
	Quiet []string `yaml:"quiet"`
}

// RelationMapping is a table relating parents to children: one event per
// parent per statement.
type RelationMapping struct {
	Table string `yaml:"table"`
	Event string `yaml:"event"`
	// Parent is the relation's parent column, the parents' table (whose id
	// column it holds) and the parent id's key in the body.
	Parent struct {
		Column string `yaml:"column"`
		Table  string `yaml:"table"`
		As     string `yaml:"as"`
	} `yaml:"parent"`
	// Child is the relation's child column and, when the data is the
	// parent's children, their table, published as that table's entity.
	Child struct {
		Column string `yaml:"column"`
		Table  string `yaml:"table"`
	} `yaml:"child"`
	// Members, when set, makes the event a delta: added<Members> and
	// removed<Members> lists of child ids, such as UserIds.
	Members string `yaml:"members"`
}

// RowMapping is a table whose inserted rows are events.
type RowMapping struct {
	Table string `yaml:"table"`
	// Event is the event; or EventBy picks it by a column's value.
	Event   string `yaml:"event"`
	EventBy *struct {
		Column string                `yaml:"column"`
		Values map[string]*EventPick `yaml:"values"`
	} `yaml:"eventBy"`
	// When are conditions that all hold for a row that is an event.
	When []*struct {
		Source string `yaml:"source"`
		Equals string `yaml:"equals"`
	} `yaml:"when"`
	// Context is the body's top level: key: source, a column or a path
	// into a JSON column (payload.userId).
	Context map[string]string `yaml:"context"`
	// Join are rows of other tables the row names, by a source matched to
	// their By column (default id) in the row's tenant, published under As
	// with Columns, or with the columns of the Entity mapping of their table.
	Join []*struct {
		As      string   `yaml:"as"`
		Table   string   `yaml:"table"`
		On      string   `yaml:"on"`
		By      string   `yaml:"by"`
		Columns []string `yaml:"columns"`
	} `yaml:"join"`
}

// EventPick is the event of a value of RowMapping.EventBy's column, and
// constants added to the body's top level.
type EventPick struct {
	Event   string            `yaml:"event"`
	Context map[string]string `yaml:"context"`
}

//go:embed presets/*.yaml
var presetFiles embed.FS

// PresetInfo names a built-in preset.
type PresetInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Presets lists the built-in presets.
func Presets() ([]*PresetInfo, error) {
	files, err := fs.Glob(presetFiles, "presets/*.yaml")
	if err != nil {
		return nil, err
	}
	var infos []*PresetInfo
	for _, file := range files {
		preset, _, err := BuiltIn(strings.TrimSuffix(path.Base(file), ".yaml"))
		if err != nil {
			return nil, err
		}
		infos = append(infos, &PresetInfo{Name: preset.Name, Description: preset.Description})
	}
	return infos, nil
}

// BuiltIn returns the built-in preset name, parsed, and its file.
func BuiltIn(name string) (*Preset, []byte, error) {
	file, err := presetFiles.ReadFile("presets/" + name + ".yaml")
	if err != nil {
		names := []string{}
		infos, _ := fs.Glob(presetFiles, "presets/*.yaml")
		for _, info := range infos {
			names = append(names, strings.TrimSuffix(path.Base(info), ".yaml"))
		}
		return nil, nil, invalid("preset", "%q: the built-in presets are %s; give your own with --mapping FILE", name, strings.Join(names, ", "))
	}
	preset, err := ParsePreset(file)
	return preset, file, err
}

var presetNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)

// ParsePreset reads a preset file and checks what needs no database.
func ParsePreset(data []byte) (*Preset, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	preset := &Preset{}
	if err := dec.Decode(preset); err != nil {
		return nil, invalid("mapping", "%v", err)
	}
	if !presetNameRE.MatchString(preset.Name) {
		return nil, invalid("mapping", "name %q: give a lower-case name such as keycloak", preset.Name)
	}
	if !slices.Contains([]string{"", "camelCase", "asIs"}, preset.Keys) {
		return nil, invalid("mapping", "keys %q: camelCase or asIs", preset.Keys)
	}
	if !slices.Contains([]string{"", "rfc3339", "unixMs"}, preset.Timestamps) {
		return nil, invalid("mapping", "timestamps %q: rfc3339 or unixMs", preset.Timestamps)
	}
	if len(preset.Entities)+len(preset.Relations)+len(preset.Rows) == 0 {
		return nil, invalid("mapping", "it maps no table: give entities, relations or rows")
	}
	tables := map[string]bool{}
	claim := func(table string) error {
		if table == "" {
			return invalid("mapping", "a mapping has no table")
		}
		if tables[table] {
			return invalid("mapping", "table %s is mapped twice; one mapping per table", table)
		}
		tables[table] = true
		return nil
	}
	if err := checkNames(preset.Tenant); err != nil {
		return nil, err
	}
	for _, e := range preset.Entities {
		if err := claim(e.Table); err != nil {
			return nil, err
		}
		if err := checkNames(e.Key); err != nil {
			return nil, err
		}
		if !entityRE.MatchString(e.Entity) {
			return nil, invalid("mapping", "entity %q of table %s: one PascalCase word such as User", e.Entity, e.Table)
		}
		if len(e.Columns) == 0 {
			return nil, invalid("mapping", "table %s lists no columns", e.Table)
		}
		for _, f := range []*FlagMapping{e.Suspended, e.Deleted} {
			if f != nil && !slices.Contains([]string{"true", "set", "future"}, f.When) {
				return nil, invalid("mapping", "table %s: when %q: true, set or future", e.Table, f.When)
			}
		}
		for _, inc := range e.Include {
			if err := claim(inc.Table); err != nil {
				return nil, err
			}
			if inc.As == "" || inc.By == "" || len(inc.Columns) == 0 {
				return nil, invalid("mapping", "an include of table %s needs as, by and columns", e.Table)
			}
			if err := checkNames(inc.By); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range preset.Relations {
		if err := claim(r.Table); err != nil {
			return nil, err
		}
		if err := outbox.ValidateEventType(r.Event); err != nil {
			return nil, err
		}
		if r.Parent.Column == "" || r.Parent.Table == "" || r.Parent.As == "" || r.Child.Column == "" || (r.Child.Table == "") == (r.Members == "") {
			return nil, invalid("mapping", "relation %s needs parent column, table and as, a child column, and either a child table or members", r.Table)
		}
		if err := checkNames(r.Parent.Column, r.Child.Column); err != nil {
			return nil, err
		}
	}
	for _, r := range preset.Rows {
		if err := claim(r.Table); err != nil {
			return nil, err
		}
		if (r.Event == "") == (r.EventBy == nil) {
			return nil, invalid("mapping", "rows of %s need an event or eventBy", r.Table)
		}
		events := []string{r.Event}
		if r.EventBy != nil {
			events = nil
			for _, pick := range r.EventBy.Values {
				events = append(events, pick.Event)
			}
		}
		for _, event := range events {
			if err := outbox.ValidateEventType(event); err != nil {
				return nil, err
			}
		}
		if err := r.checkSources(); err != nil {
			return nil, err
		}
	}
	return preset, nil
}

// checkNames refuses columns a mapping names whose names look like secrets:
// every column whose values an event may carry or a lookup compares.
func checkNames(columns ...string) error {
	for _, column := range columns {
		if LooksSecret(column) {
			return invalid("mapping", "column %q looks like a secret (password, hash, token, key, …) and is never published or compared", column)
		}
	}
	return nil
}

// pathElementRE is what a step of a path into a JSON column may hold: no
// quote, backslash, brace, comma or space, which would change what an
// array literal of the path reads.
var pathElementRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// checkSources refuses malformed sources, and those of the body and the
// joins that look like secrets. Conditions (when, eventBy) compare a column
// with the mapping's own constants and publish none of it.
func (r *RowMapping) checkSources() error {
	var conditions, published []string
	for _, w := range r.When {
		conditions = append(conditions, w.Source)
	}
	if r.EventBy != nil {
		conditions = append(conditions, r.EventBy.Column)
	}
	for _, source := range r.Context {
		published = append(published, source)
	}
	for _, j := range r.Join {
		published = append(published, j.On)
		if err := checkNames(j.By); err != nil {
			return err
		}
	}
	for i, s := range append(published, conditions...) {
		src := parseSource(s)
		if src.column == "" {
			return invalid("mapping", "rows of %s: source %q names no column", r.Table, s)
		}
		for _, step := range src.path {
			if !pathElementRE.MatchString(step) {
				return invalid("mapping", "rows of %s: source %q: a step of a JSON path holds only letters, digits, _ and -", r.Table, s)
			}
		}
		if i < len(published) {
			if err := checkNames(src.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// events are every event the preset may publish.
func (p *Preset) events() []string {
	var events []string
	for _, e := range p.Entities {
		events = append(events, entityEvents(e.Entity)...)
	}
	for _, r := range p.Relations {
		events = append(events, r.Event)
	}
	for _, r := range p.Rows {
		if r.Event != "" {
			events = append(events, r.Event)
		}
		if r.EventBy != nil {
			for _, pick := range r.EventBy.Values {
				events = append(events, pick.Event)
			}
		}
	}
	return events
}

// PresetOptions adjust an install.
type PresetOptions struct {
	// TableSchema is the schema of the preset's tables. Defaults to the
	// preset's.
	TableSchema string
	// AllTenants publishes the rows of the preset's SkipTenants too.
	AllTenants bool
}

// PresetResult says what a preset installed and which tables it skipped.
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

// InstallPreset installs the captures of preset, in one transaction,
// replacing earlier captures of its tables. A table the database lacks (an
// older version of the auth server) is skipped and reported, as is one
// without a column a mapping needs; columns it lacks are left out. A
// database with none of the tables is an error.
func (c *Capturer) InstallPreset(ctx context.Context, preset *Preset, options *PresetOptions) (*PresetResult, error) {
	if options == nil {
		options = &PresetOptions{}
	}
	events := preset.events()
	if err := c.checkEvents(ctx, events); err != nil {
		return nil, err
	}
	schema := options.TableSchema
	if schema == "" {
		schema = preset.Schema
	}
	if schema == "" {
		schema = "public"
	}
	if schema == c.schema {
		return nil, invalid("table schema", "%s is hookrelay's own schema; give the schema of the auth server's tables", schema)
	}
	result := &PresetResult{Preset: preset.Name, Installed: []*Capture{}}
	err := c.captureTx(ctx, func(tx pgx.Tx) error {
		p := &presetInstall{c: c, tx: tx, preset: preset, schema: schema, result: result, tables: map[string]*captureTable{},
			st: style{camelKeys: preset.Keys != "asIs", unixMS: preset.Timestamps == "unixMs"}}
		if !options.AllTenants {
			p.skipTenants = preset.SkipTenants
		}
		for _, e := range preset.Entities {
			if err := p.entity(ctx, e); err != nil {
				return err
			}
		}
		for _, r := range preset.Relations {
			if err := p.relation(ctx, r); err != nil {
				return err
			}
		}
		for _, r := range preset.Rows {
			if err := p.rows(ctx, r); err != nil {
				return err
			}
		}
		if len(result.Installed) == 0 {
			return invalid("table schema", "schema %q holds none of %s's tables; give the schema of its tables with --table-schema", schema, title(preset.Name))
		}
		return c.store.RegisterEventTypesTx(ctx, tx, events...)
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// RemovePreset removes every capture the preset installed and returns them.
func (c *Capturer) RemovePreset(ctx context.Context, name string) ([]*Capture, error) {
	var removed []*Capture
	err := c.captureTx(ctx, func(tx pgx.Tx) error {
		rows, err := c.queries(tx).CaptureListByPreset(ctx, &name)
		if err != nil {
			return fmt.Errorf("list captures of preset %s: %w", name, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("%w: preset %s is not installed", ErrNotFound, name)
		}
		for _, row := range rows {
			table, err := c.resolveTable(ctx, tx, row.TableName)
			if err != nil {
				table = nil // gone, and its triggers with it
			}
			if err := c.remove(ctx, tx, row, table); err != nil {
				return err
			}
			removed = append(removed, fromRow(row))
		}
		return nil
	})
	return removed, err
}

type presetInstall struct {
	c           *Capturer
	tx          pgx.Tx
	preset      *Preset
	schema      string
	st          style
	skipTenants []string
	result      *PresetResult
	tables      map[string]*captureTable // resolved, by name
	entities    map[string]*entity       // installed, by table
}

// table resolves name in the preset's schema. It returns nil and why when
// the table is missing (an older version) or lacks a required column.
func (p *presetInstall) table(ctx context.Context, name string, required ...string) (*captureTable, string, error) {
	table := p.tables[name]
	if table == nil {
		var err error
		table, err = p.c.resolveTable(ctx, p.tx, pgx.Identifier{p.schema, name}.Sanitize())
		var validationErr *outbox.ValidationError
		if errors.As(err, &validationErr) {
			return nil, fmt.Sprintf("there is no table %s.%s (an older %s?)", p.schema, name, title(p.preset.Name)), nil
		}
		if err != nil {
			return nil, "", err
		}
		p.tables[name] = table
	}
	for _, column := range required {
		if column != "" && !table.has(column) {
			return nil, fmt.Sprintf("%s has no column %s: not the table this preset knows", table.name, column), nil
		}
	}
	return table, "", nil
}

func (p *presetInstall) skip(table, reason string) {
	p.result.Skipped = append(p.result.Skipped, PresetSkip{Table: p.schema + "." + table, Reason: reason})
}

// checkKey refuses a table whose rows a capture finds by key, in the row's
// tenant, unless the key and the tenant column identify one row: both NOT
// NULL, of a key class, and unique together (a unique index on key, or on
// key and tenant). Without the tenant column a lookup could find another
// tenant's row.
func (p *presetInstall) checkKey(table *captureTable, key string) error {
	tenant := p.tenantOf(table)
	if p.preset.Tenant != "" && tenant == "" {
		return invalid("mapping", "%s has no column %s: a capture finds rows in their tenant, so every table it reads rows of needs the tenant column", table.name, p.preset.Tenant)
	}
	for _, column := range []string{key, tenant} {
		switch {
		case column == "":
		case !table.notNull[column]:
			return invalid("mapping", "%s.%s may be NULL: a capture finds rows by it, so it must be NOT NULL", table.name, column)
		case table.types[column].keyClass() == "":
			return invalid("mapping", "%s.%s has type %s: a capture finds rows by columns of type %s", table.name, column, table.types[column].name, keyTypes)
		}
	}
	for _, unique := range table.uniqueKeys {
		if slices.Contains(unique, key) && !slices.ContainsFunc(unique, func(c string) bool { return c != key && c != tenant }) {
			return nil
		}
	}
	if tenant == "" {
		return invalid("mapping", "%s.%s is not unique: a capture finds one row by it, so it needs a unique index or primary key on it", table.name, key)
	}
	return invalid("mapping", "%s.%s is not unique within a tenant: a capture finds one row by it, so it needs a unique index or primary key on (%s) or (%s, %s)", table.name, key, key, tenant, key)
}

// checkFlag refuses a flag whose column's type cannot hold it: when true
// needs a boolean, when future a timestamp.
func checkFlag(table *captureTable, f *FlagMapping) error {
	t := table.types[f.Column]
	switch {
	case f.When == "true" && t.oid != booleanOID:
		return invalid("mapping", "%s.%s has type %s: when true needs a boolean column", table.name, f.Column, t.name)
	case f.When == "future" && t.oid != timestampOID && t.oid != timestamptzOID:
		return invalid("mapping", "%s.%s has type %s: when future needs a timestamp column", table.name, f.Column, t.name)
	}
	return nil
}

// checkMatch refuses a lookup that compares columns of different key
// classes, whose comparison would need a cast.
func checkMatch(a, b tableColumn) error {
	classA, classB := a.table.types[a.column].keyClass(), b.table.types[b.column].keyClass()
	if classA == "" || classA != classB {
		return invalid("mapping", "%s.%s (%s) is compared with %s.%s (%s) to find rows: both must be text or varchar, both smallint, integer or bigint, or both uuid",
			a.table.name, a.column, a.table.types[a.column].name, b.table.name, b.column, b.table.types[b.column].name)
	}
	return nil
}

// checkMatches is checkMatch of the columns that name rows of table by key
// (and the tenant): from is the table that names them, by the column that
// holds the key.
func (p *presetInstall) checkMatches(from *captureTable, by string, table *captureTable, key string) error {
	if err := checkMatch(tableColumn{from, by}, tableColumn{table, key}); err != nil {
		return err
	}
	if tenant := p.tenantOf(from); tenant != "" {
		return checkMatch(tableColumn{from, tenant}, tableColumn{table, p.tenantOf(table)})
	}
	return nil
}

// columns parses specs ("column" or "column as key") and returns those the
// table has; it refuses names that look like secrets.
func (p *presetInstall) columns(table *captureTable, specs []string) ([]column, error) {
	var columns []column
	for _, spec := range specs {
		name, key, renamed := strings.Cut(spec, " as ")
		name, key = strings.TrimSpace(name), strings.TrimSpace(key)
		if !renamed {
			key = p.st.key(name)
		}
		if LooksSecret(name) {
			return nil, invalid("mapping", "column %q of %s looks like a secret (password, hash, token, key, …) and is never published", name, table.name)
		}
		if table.has(name) {
			columns = append(columns, column{name: name, key: key})
		}
	}
	return columns, nil
}

// keyOf returns the data key of column among columns, or "".
func keyOf(columns []column, name string) string {
	for _, c := range columns {
		if c.name == name {
			return c.key
		}
	}
	return ""
}

// install installs a capture of the preset; reads are the columns its
// functions read of other tables, compared those they compare, which must
// be of built-in types.
func (p *presetInstall) install(ctx context.Context, table *captureTable, capture *Capture, ddl string, reads, compared []tableColumn) error {
	for _, tc := range compared {
		if !tc.table.types[tc.column].builtIn() {
			return invalid("mapping", "%s.%s is compared to find rows but has type %s: give columns of built-in types", tc.table.name, tc.column, tc.table.types[tc.column].name)
		}
	}
	capture.Preset = p.preset.Name
	capture.TenantColumn = p.tenantOf(table)
	// A compared column is read, and its table locked by reading it.
	if err := p.c.prepareRole(ctx, p.tx, append(reads, compared...)); err != nil {
		return err
	}
	installed, err := p.c.installTriggers(ctx, p.tx, table, capture, ddl)
	if err != nil {
		return err
	}
	p.result.Installed = append(p.result.Installed, installed)
	return nil
}

// tenantOf is the tenant column of table, if the preset has tenants.
func (p *presetInstall) tenantOf(table *captureTable) string {
	if p.preset.Tenant != "" && table.has(p.preset.Tenant) {
		return p.preset.Tenant
	}
	return ""
}

func (p *presetInstall) entity(ctx context.Context, m *EntityMapping) error {
	key := m.Key
	if key == "" {
		key = "id"
	}
	table, missing, err := p.table(ctx, m.Table, key, p.preset.Tenant)
	if table == nil {
		p.skip(m.Table, missing)
		return err
	}
	columns, err := p.columns(table, m.Columns)
	if err != nil {
		return err
	}
	e := &entity{table: table, name: m.Entity, key: key, columns: columns, tenant: p.tenantOf(table), skipTenants: p.skipTenants,
		perTransaction: m.PerTransaction || len(m.Include) > 0}
	for _, q := range m.Quiet {
		if k := keyOf(columns, q); k != "" {
			e.quiet = append(e.quiet, k)
		}
	}
	for _, f := range []struct {
		mapping *FlagMapping
		flag    **flag
	}{{m.Suspended, &e.suspended}, {m.Deleted, &e.deleted}} {
		if f.mapping == nil {
			continue
		}
		if k := keyOf(columns, f.mapping.Column); k != "" {
			if err := checkFlag(table, f.mapping); err != nil {
				return err
			}
			*f.flag = &flag{key: k, when: f.mapping.When}
		}
	}
	reads := []tableColumn{{table, key}}
	if e.perTransaction {
		// It reads its entity back at commit, by its key in its tenant.
		if err := p.checkKey(table, key); err != nil {
			return err
		}
		for _, c := range columns {
			reads = append(reads, tableColumn{table, c.name})
		}
		if e.tenant != "" {
			reads = append(reads, tableColumn{table, e.tenant})
		}
	}
	for _, im := range m.Include {
		child, missing, err := p.table(ctx, im.Table, im.By)
		if child == nil {
			p.skip(im.Table, missing)
			if err != nil {
				return err
			}
			continue
		}
		if p.preset.Tenant != "" && p.tenantOf(child) == "" {
			return invalid("mapping", "%s has no column %s: its rows are found by their entity's key in their tenant", child.name, p.preset.Tenant)
		}
		if err := p.checkMatches(child, im.By, table, key); err != nil {
			return err
		}
		childColumns, err := p.columns(child, im.Columns)
		if err != nil {
			return err
		}
		inc := &include{key: im.As, table: child, by: im.By, columns: childColumns}
		for _, q := range im.Quiet {
			if keyOf(childColumns, q) != "" {
				inc.quiet = append(inc.quiet, keyOf(childColumns, q))
			}
		}
		e.includes = append(e.includes, inc)
		reads = append(reads, tableColumn{child, im.By})
		if e.tenant != "" {
			reads = append(reads, tableColumn{child, e.tenant})
		}
		for _, c := range childColumns {
			reads = append(reads, tableColumn{child, c.name})
		}
	}
	if p.entities == nil {
		p.entities = map[string]*entity{}
	}
	p.entities[m.Table] = e
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.name
	}
	// The entity's triggers, and one on each included table: one install,
	// recorded per table.
	ddl := p.c.entityDDL(e, p.st)
	var compared []tableColumn
	if e.perTransaction {
		compared = e.compared()
	}
	if err := p.install(ctx, table, &Capture{Table: table.name, Entity: m.Entity, Columns: names}, ddl, reads, compared); err != nil {
		return err
	}
	for _, inc := range e.includes {
		row, err := p.c.queries(p.tx).CaptureInsert(ctx, &dbsqlc.CaptureInsertParams{
			TableName: inc.table.name, Entity: m.Entity, Columns: []string{inc.by},
			FunctionName: p.c.functionName(inc.table.name), Preset: &p.preset.Name, TenantColumn: nullable(e.tenant),
		})
		if err != nil {
			return fmt.Errorf("record capture of %s: %w", inc.table.name, err)
		}
		if err := p.c.giveToRole(ctx, p.tx, p.c.functionName(inc.table.name)); err != nil {
			return err
		}
		p.result.Installed = append(p.result.Installed, fromRow(row))
	}
	return nil
}

func (p *presetInstall) relation(ctx context.Context, m *RelationMapping) error {
	table, missing, err := p.table(ctx, m.Table, p.preset.Tenant, m.Parent.Column, m.Child.Column)
	if table == nil {
		p.skip(m.Table, missing)
		return err
	}
	parents, missing, err := p.table(ctx, m.Parent.Table, "id")
	if parents == nil {
		p.skip(m.Table, missing)
		return err
	}
	if err := p.checkKey(parents, "id"); err != nil {
		return err
	}
	if err := p.checkMatches(table, m.Parent.Column, parents, "id"); err != nil {
		return err
	}
	r := &relation{table: table, event: m.Event, parent: m.Parent.Column, child: m.Child.Column, parents: parents,
		parentKey: m.Parent.As, members: m.Members, tenant: p.tenantOf(table), skipTenants: p.skipTenants}
	if m.Child.Table != "" {
		children, missing, err := p.table(ctx, m.Child.Table, "id")
		if children == nil {
			p.skip(m.Table, missing)
			return err
		}
		if err := p.checkKey(children, "id"); err != nil {
			return err
		}
		if err := p.checkMatches(table, m.Child.Column, children, "id"); err != nil {
			return err
		}
		childEntity := p.entities[m.Child.Table]
		if childEntity == nil {
			return invalid("mapping", "relation %s: its child table %s has no entity mapping to publish it with", m.Table, m.Child.Table)
		}
		r.children, r.childColumns = children, childEntity.columns
	}
	reads, compared := r.reads()
	entity := strings.SplitN(m.Event, ".", 2)[0]
	return p.install(ctx, table, &Capture{Table: table.name, Entity: entity, Columns: []string{m.Parent.Column, m.Child.Column}},
		p.c.relationDDL(r, p.st), reads, compared)
}

// title is a preset's name as the product's: logto → Logto.
func title(name string) string { return strings.ToUpper(name[:1]) + name[1:] }

// parseSource reads "column" or "column.path.in.json".
func parseSource(s string) source {
	parts := strings.Split(s, ".")
	return source{column: parts[0], path: parts[1:]}
}

func (p *presetInstall) rows(ctx context.Context, m *RowMapping) error {
	required := []string{p.preset.Tenant}
	if m.EventBy != nil {
		required = append(required, m.EventBy.Column)
	}
	for _, w := range m.When {
		required = append(required, parseSource(w.Source).column)
	}
	table, missing, err := p.table(ctx, m.Table, required...)
	if table == nil {
		p.skip(m.Table, missing)
		return err
	}
	e := &rowEvent{table: table, event: m.Event, tenant: p.tenantOf(table), skip: p.skipTenants}
	if m.EventBy != nil {
		e.eventBy = m.EventBy.Column
		for _, value := range slices.Sorted(maps.Keys(m.EventBy.Values)) {
			pick := m.EventBy.Values[value]
			e.values = append(e.values, &eventValue{value: value, event: pick.Event, constants: pick.Context})
		}
	}
	for _, w := range m.When {
		e.when = append(e.when, &condition{source: parseSource(w.Source), equals: w.Equals})
	}
	columns := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(m.Context)) {
		src := parseSource(m.Context[key])
		if table.has(src.column) {
			e.context = append(e.context, &contextField{key: key, source: src})
			columns[src.column] = true
		}
	}
	for _, jm := range m.Join {
		by := jm.By
		if by == "" {
			by = "id"
		}
		joined, missing, err := p.table(ctx, jm.Table, by)
		if joined == nil {
			p.skip(m.Table, missing)
			return err
		}
		if err := p.checkKey(joined, by); err != nil {
			return err
		}
		on := parseSource(jm.On)
		if !table.has(on.column) {
			continue
		}
		if len(on.path) > 0 {
			// A value of a JSON column, converted only when valid.
			if tenant := p.tenantOf(table); tenant != "" {
				if err := checkMatch(tableColumn{table, tenant}, tableColumn{joined, p.tenantOf(joined)}); err != nil {
					return err
				}
			}
		} else if err := p.checkMatches(table, on.column, joined, by); err != nil {
			return err
		}
		specs := jm.Columns
		if len(specs) == 0 {
			if mapped := p.entities[jm.Table]; mapped != nil {
				for _, c := range mapped.columns {
					specs = append(specs, c.name+" as "+c.key)
				}
			}
		}
		joinedColumns, err := p.columns(joined, specs)
		if err != nil {
			return err
		}
		e.joins = append(e.joins, &join{key: jm.As, table: joined, on: on, by: by, columns: joinedColumns})
		columns[on.column] = true
	}
	reads, compared := e.reads()
	names := slices.Sorted(maps.Keys(columns))
	name := e.event
	if name == "" {
		name = "Events"
	}
	return p.install(ctx, table, &Capture{Table: table.name, Entity: strings.SplitN(name, ".", 2)[0], Columns: names},
		p.c.rowEventDDL(e, p.st), reads, compared)
}
