package integration

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkLogtoLogInsert measures what the Logto preset costs Logto's
// busiest table: a log row written as the tenant's role, one per
// transaction, without the preset, with it for a row that is no event (a
// step of an interaction: most rows), and with it for a finished sign-in,
// which publishes PostSignIn with the user and the application.
//
//	go test -run '^$' -bench LogtoLogInsert -benchtime 5000x ./integration
func BenchmarkLogtoLogInsert(b *testing.B) {
	for _, tt := range []struct {
		name    string
		install bool
		key     string
	}{
		{"WithoutPreset", false, "Interaction.SignIn.Identifier.Submit"},
		{"WithPresetNoEvent", true, "Interaction.SignIn.Identifier.Submit"},
		{"WithPresetPostSignIn", true, "Interaction.SignIn.Submit"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			ctx := context.Background()
			logto := setupLogto(b)
			if tt.install {
				_, err := installLogto(b, logto.store)
				require.NoError(b, err)
			}
			logto.admin(b, `INSERT INTO users (tenant_id, id, username, primary_email) VALUES ('t1', 'u1', 'ann', 'ann@example.com')`)
			payload := `{"result": "Success", "userId": "u1", "ip": "203.0.113.7", "userAgent": "Mozilla/5.0", "applicationId": "web", "interaction": {"interactionEvent": "SignIn"}}`
			b.ResetTimer()
			for i := range b.N {
				_, err := logto.tenant.Exec(ctx, "INSERT INTO logs (id, key, payload) VALUES ($1, $2, $3)", fmt.Sprintf("b%d", i), tt.key, payload)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
