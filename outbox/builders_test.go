package outbox

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestBuildersGolden(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	user := &User{ID: "u1", Username: "ann", PrimaryEmail: "ann@example.com", CreatedAt: &created}
	role := &Role{ID: "r1", Name: "admin", Description: "Administrators", Type: "User"}
	scope := Scope{ID: "s1", ResourceID: "api1", Name: "read:users"}
	org := &Organization{ID: "o1", Name: "Acme"}
	orgRole := &OrganizationRole{ID: "or1", Name: "member"}
	interaction := &Interaction{
		SessionID: "sess1", User: user, IP: "203.0.113.7", UserAgent: "curl/8",
		Application: &Application{ID: "app1", Name: "Web", Type: "SPA"},
	}
	hook := &Hook{ID: "h1", Name: "crm", URL: "https://crm.example.com/hooks", Events: []string{"User.*"}, TenantID: "t1", Enabled: true,
		SigningKey: "whsec_secret", Headers: map[string]string{"Authorization": "Bearer secret"}, RateLimit: "50/s"}
	many := make([]string, MembershipIDsMax+5)
	for i := range many {
		many[i] = "u" + strconv.Itoa(i)
	}

	events := map[string]*Event{
		"PostRegister":                   PostRegister(interaction),
		"PostSignIn":                     PostSignIn(interaction),
		"PostResetPassword":              PostResetPassword(&Interaction{UserID: "u1"}),
		"PostSignInAdaptiveMfaTriggered": PostSignInAdaptiveMfaTriggered(interaction, "new device"),
		"UserCreated":                    UserCreated(user),
		"UserDataUpdated":                UserDataUpdated(user),
		"UserSuspensionStatusUpdated":    UserSuspensionStatusUpdated(&User{ID: "u1", IsSuspended: true}),
		"UserDeleted":                    UserDeleted("u1", nil),
		"UserDeletedWithEntity":          UserDeleted("u1", user),
		"RoleCreated":                    RoleCreated(role),
		"RoleDataUpdated":                RoleDataUpdated(role),
		"RoleDeleted":                    RoleDeleted("r1", nil),
		"RoleScopesUpdated":              RoleScopesUpdated("r1", []Scope{scope}),
		"ScopeCreated":                   ScopeCreated(&scope),
		"ScopeDataUpdated":               ScopeDataUpdated(&scope),
		"ScopeDeleted":                   ScopeDeleted("s1", nil),
		"OrganizationCreated":            OrganizationCreated(org),
		"OrganizationDataUpdated":        OrganizationDataUpdated(org),
		"OrganizationDeleted":            OrganizationDeleted("o1", org),
		"OrganizationMembershipUpdated":  OrganizationMembershipUpdated("o1", &MembershipChange{AddedUserIDs: []string{"u1", "u2"}, RemovedApplicationIDs: []string{"app9"}}),
		"OrganizationMembershipCapped":   OrganizationMembershipUpdated("o1", &MembershipChange{AddedUserIDs: many}),
		"OrganizationRoleCreated":        OrganizationRoleCreated(orgRole),
		"OrganizationRoleDataUpdated":    OrganizationRoleDataUpdated(orgRole),
		"OrganizationRoleDeleted":        OrganizationRoleDeleted("or1", nil),
		"OrganizationRoleScopesUpdated":  OrganizationRoleScopesUpdated("or1", nil),
		"OrganizationScopeCreated":       OrganizationScopeCreated(&Scope{ID: "os1", Name: "invite"}),
		"OrganizationScopeDataUpdated":   OrganizationScopeDataUpdated(&Scope{ID: "os1", Name: "invite"}),
		"OrganizationScopeDeleted":       OrganizationScopeDeleted("os1", nil),
		"IdentifierLockout":              IdentifierLockout("email", "ann@example.com"),
		"MessageRateLimited":             MessageRateLimited("sms", "+15550100"),
		"GrantLimitExceeded":             GrantLimitExceeded("app1", "tokens per minute"),
		"HookCreated":                    HookCreated(hook),
		"HookUpdated":                    HookUpdated(hook),
		"HookDeleted":                    HookDeleted(hook),
		"HookDisabled":                   HookDisabled(&Hook{ID: "h1", Name: "crm", URL: "https://crm.example.com/hooks", Events: []string{"User.*"}, DisabledReason: "receiver answered 410 Gone at 2026-03-04T05:06:07Z"}),
		"HookEnabled":                    HookEnabled(hook),
		"DeliveryFailed":                 (&DeliveryFailure{ID: "d1", HookID: "h1", EventID: "e1", EventType: "User.Created", Attempts: 8, LastStatusCode: 500}).Event("t1"),
	}
	covered := map[string]bool{}
	for name, event := range events {
		covered[event.Type] = true
		params, err := eventInsertParams(event, MaxPayloadBytesDefault)
		require.NoError(t, err, name)
		body, err := buildBody("hook1", &dbsqlc.Event{
			ID: "event1", Type: params.Type, Data: params.Data, Context: params.Context, CreatedAt: created,
		})
		require.NoError(t, err, name)

		path := filepath.Join("testdata", "golden", name+".json")
		if *update {
			require.NoError(t, os.WriteFile(path, append(body, '\n'), 0o600))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "run go test ./outbox -run Golden -update")
		require.Equal(t, string(want), string(body)+"\n", name)
	}
	for _, info := range Catalog {
		require.True(t, covered[info.Type], "no builder test for %s", info.Type)
		require.NoError(t, ValidateEventType(info.Type))
	}
}
