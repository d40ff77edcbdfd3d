package outbox

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

func TestBuildBody(t *testing.T) {
	t.Parallel()
	createdAt := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("CET", 3600))
	tenant := "t1"

	for _, tt := range []struct {
		name  string
		event dbsqlc.Event
		want  string
	}{
		{
			name:  "NullDataNoContext",
			event: dbsqlc.Event{ID: "e1", Type: "User.Deleted", Context: []byte(`{}`), CreatedAt: createdAt},
			want:  `{"hookId":"h1","event":"User.Deleted","createdAt":"2026-01-02T02:04:05.678Z","eventId":"e1","data":null}`,
		},
		{
			name: "ContextSortedAndNeverOverridesReservedKeys",
			event: dbsqlc.Event{
				ID: "e2", Type: "PostSignIn", TenantID: &tenant, CreatedAt: createdAt,
				Data:    []byte(`{"id": "u1", "name": "<Ann>"}`),
				Context: []byte(`{"userId": "u1", "hookId": "x", "event": "x", "createdAt": "x", "eventId": "x", "data": "x", "tenantId": "x", "ip": "203.0.113.1", "user": {"id": "u1"}}`),
			},
			want: `{"hookId":"h1","event":"PostSignIn","createdAt":"2026-01-02T02:04:05.678Z","eventId":"e2","data":{"id":"u1","name":"<Ann>"},"tenantId":"t1","ip":"203.0.113.1","user":{"id":"u1"},"userId":"u1"}`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, err := buildBody("h1", &tt.event)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(body))
		})
	}
}

func TestValidateHook(t *testing.T) {
	t.Parallel()
	ok := func(name, url string, events []string, headers map[string]string) error {
		_, _, err := validateHook(name, url, events, headers, "")
		return err
	}
	require.NoError(t, ok("n", "https://example.com/hook", []string{"User.*"}, map[string]string{"Authorization": "Bearer x"}))

	for _, tt := range []struct {
		name    string
		err     error
		wantErr string
	}{
		{"NoName", ok("", "https://example.com", []string{"*"}, nil), "invalid name"},
		{"BadScheme", ok("n", "ftp://example.com", []string{"*"}, nil), "scheme must be http or https"},
		{"NoHost", ok("n", "https://", []string{"*"}, nil), "has no host"},
		{"Relative", ok("n", "/hook", []string{"*"}, nil), "scheme must be"},
		{"Credentials", ok("n", "https://u:p@example.com", []string{"*"}, nil), "credentials in the URL"},
		{"NoEvents", ok("n", "https://example.com", nil, nil), "at least one event filter"},
		{"BadFilter", ok("n", "https://example.com", []string{"user.created"}, nil), "invalid event filter"},
		{"ReservedHeader", ok("n", "https://example.com", []string{"*"}, map[string]string{"Webhook-Signature": "x"}), "cannot be replaced"},
		{"ReservedHeaderAsCGIReadsIt", ok("n", "https://example.com", []string{"*"}, map[string]string{"webhook_signature": "x"}), "cannot be replaced"},
		{"ReservedHeaderWithDots", ok("n", "https://example.com", []string{"*"}, map[string]string{"Logto.Signature.Sha-256": "x"}), "cannot be replaced"},
		{"HeadersThatReadAsOne", ok("n", "https://example.com", []string{"*"}, map[string]string{"X-Tenant": "1", "X_Tenant": "2"}), "duplicate header"},
		{"HopByHopHeader", ok("n", "https://example.com", []string{"*"}, map[string]string{"Transfer-Encoding": "x"}), "cannot be replaced"},
		{"DuplicateHeader", ok("n", "https://example.com", []string{"*"}, map[string]string{"X-A": "1", "x-a": "2"}), "duplicate header"},
		{"HeaderCRLF", ok("n", "https://example.com", []string{"*"}, map[string]string{"X-A": "1\r\nX-B: 2"}), "line break"},
		{"HeaderName", ok("n", "https://example.com", []string{"*"}, map[string]string{"X A": "1"}), "not a valid header name"},
	} {
		var validationErr *ValidationError
		require.ErrorAs(t, tt.err, &validationErr, tt.name)
		require.ErrorContains(t, tt.err, tt.wantErr, tt.name)
	}
}
