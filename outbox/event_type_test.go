package outbox

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidateEventType(t *testing.T) {
	t.Parallel()

	for _, valid := range []string{"User.Created", "PostSignIn", "User.Data.Updated", "Invoice.Paid", "A", "OrganizationRole.Scopes.Updated", "V2.Thing1"} {
		require.NoError(t, ValidateEventType(valid), valid)
	}
	for _, invalid := range []string{"", "user.created", "User.", ".User", "User..Created", "User.*", "*", "User Created", "User-Created", "Üser", "1User", strings.Repeat("A", EventTypeMaxLength+1)} {
		err := ValidateEventType(invalid)
		var validationErr *ValidationError
		require.ErrorAs(t, err, &validationErr, invalid)
		require.Contains(t, err.Error(), "dotted PascalCase")
	}
	require.ErrorContains(t, ValidateEventType("user.created"), "did you mean User.Created?")
	require.ErrorContains(t, ValidateEventType("postSignIn"), "did you mean PostSignIn?")
	require.NotContains(t, ValidateEventType("invoice.paid").Error(), "did you mean")
}

func TestValidateEventFilter(t *testing.T) {
	t.Parallel()

	for _, valid := range []string{"*", "User.*", "User.Data.*", "PostSignIn"} {
		require.NoError(t, ValidateEventFilter(valid), valid)
	}
	for _, invalid := range []string{"", "**", ".*", "user.*", "User*", "User.*.Created", "*.Created"} {
		require.Error(t, ValidateEventFilter(invalid), invalid)
	}
}

func TestMatchEventFilter(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		filter, eventType string
		want              bool
	}{
		{"*", "User.Created", true},
		{"*", "Hook.Disabled", false},
		{"Hook.*", "Hook.Disabled", true},
		{"Delivery.Failed", "Delivery.Failed", true},
		{"User.Created", "User.Created", true},
		{"User.Created", "User.Deleted", false},
		{"User.*", "User.Created", true},
		{"User.*", "User.Data.Updated", true},
		{"User.*", "User", false},
		{"User.*", "UserX.Created", false},
		{"User.Data.*", "User.Data.Updated", true},
		{"User.Data.*", "User.Created", false},
		{"Organization.*", "OrganizationRole.Created", false},
		{"PostSignIn", "PostSignInAdaptiveMfaTriggered", false},
	} {
		require.Equal(t, tt.want, MatchEventFilter(tt.filter, tt.eventType), "%s ~ %s", tt.filter, tt.eventType)
	}
	require.True(t, MatchEventFilters([]string{"Role.*", "User.Created"}, "User.Created"))
	require.False(t, MatchEventFilters([]string{"Role.*", "User.Created"}, "User.Deleted"))
}

func FuzzEventTypeAndFilter(f *testing.F) {
	for _, seed := range []string{"User.Created", "User.*", "*", "", "a.b", "User..X", "PostSignIn"} {
		f.Add(seed, "User.Created")
	}
	f.Fuzz(func(t *testing.T, filter, eventType string) {
		if ValidateEventType(eventType) == nil && MatchEventFilter(filter, eventType) {
			// Whatever matches a valid type is a valid filter, or the type itself.
			require.NoError(t, ValidateEventFilter(filter))
		}
		if ValidateEventType(eventType) == nil {
			require.True(t, MatchEventFilter(eventType, eventType))
			require.True(t, MatchEventFilter("*", eventType))
		}
	})
}

func TestNearMiss(t *testing.T) {
	t.Parallel()

	for typo, want := range map[string]string{
		"User.Craeted":       "User.Created",
		"User.Create":        "User.Created",
		"User.Createdd":      "User.Created",
		"User.Deletd":        "User.Deleted",
		"PostSignin":         "PostSignIn",
		"POSTSIGNIN":         "PostSignIn",
		"Role.Scope.Updated": "Role.Scopes.Updated",
	} {
		require.Equal(t, want, NearMiss(typo), typo)
	}
	for _, far := range []string{"User.Created", "PostSignIn", "Invoice.Paid", "User.Archived", "Session.Revoked", ""} {
		require.Empty(t, NearMiss(far), far)
	}
	for _, info := range Catalog {
		require.Empty(t, NearMiss(info.Type), "a catalogue type is no near miss of another")
	}
}

func TestNewUUIDv7(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 1, 2, 3, 500_000_000+250_000, time.UTC) // .500250 s
	id := newUUIDv7(at)
	require.True(t, isUUID(id), id)
	require.Equal(t, fmt.Sprintf("%012x", at.UnixMilli()), strings.ReplaceAll(id[:13], "-", ""), "48 bits of Unix milliseconds")
	require.Equal(t, byte('7'), id[14], "version 7")
	require.Equal(t, fmt.Sprintf("%03x", 250*4096/1000), id[15:18], "the millisecond's fraction")
	require.Contains(t, "89ab", string(id[19]), "the RFC's variant")
	require.NotEqual(t, id, newUUIDv7(at), "62 random bits")
	require.Less(t, newUUIDv7(at), newUUIDv7(at.Add(time.Millisecond)), "ordered by time")
	require.Less(t, newUUIDv7(at), newUUIDv7(at.Add(10*time.Microsecond)), "and within a millisecond")
}
