package outbox

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSignatureV1(t *testing.T) {
	t.Parallel()

	t.Run("StandardWebhooksVector", func(t *testing.T) {
		t.Parallel()
		// The test vector of the Standard Webhooks reference libraries.
		sig, err := SignatureV1("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
		require.NoError(t, err)
		require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)
	})

	t.Run("BadKeyNeverShowsIt", func(t *testing.T) {
		t.Parallel()
		for _, key := range []string{"whsec_not base64!", "nokeyprefix"} {
			_, err := SignatureV1(key, "id", 1, nil)
			require.Error(t, err)
			require.NotContains(t, err.Error(), key)
		}
	})
}

func TestSignatureLogto(t *testing.T) {
	t.Parallel()
	// echo -n '{"event":"PostSignIn"}' | openssl dgst -sha256 -hmac 'whsec_key'
	require.Equal(t, "b864eb15a89c6723afae9c856b18194286378ac43db190825c3564f6064609d1",
		SignatureLogto("whsec_key", []byte(`{"event":"PostSignIn"}`)))
}

func TestNewSigningKey(t *testing.T) {
	t.Parallel()
	key := NewSigningKey()
	require.True(t, strings.HasPrefix(key, "whsec_"))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "whsec_"))
	require.NoError(t, err)
	require.Len(t, raw, 32)
	require.NotEqual(t, key, NewSigningKey())
}

func TestVerifySignatureV1(t *testing.T) {
	t.Parallel()
	const key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	valid := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	require.True(t, VerifySignatureV1(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, valid))
	require.True(t, VerifySignatureV1(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, "v1,b3RoZXI= "+valid), "one of several entries")
	require.False(t, VerifySignatureV1(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, valid), "another timestamp")
	require.False(t, VerifySignatureV1(key, "msg_other", 1614265330, body, valid), "another id")
	require.False(t, VerifySignatureV1(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 1}`), valid), "another body")
	require.False(t, VerifySignatureV1("whsec_!!", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, valid), "a bad key")
}

func FuzzVerifySignatureV1(f *testing.F) {
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{}`), int64(1))
	f.Add("", []byte(nil), int64(-1))
	f.Add("v1, v1,,, v2,x", []byte("x"), int64(1<<62))
	f.Fuzz(func(t *testing.T, header string, body []byte, timestamp int64) {
		key := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		sig, err := SignatureV1(key, "id", timestamp, body)
		require.NoError(t, err)
		require.True(t, VerifySignatureV1(key, "id", timestamp, body, header+" "+sig))
		require.False(t, VerifySignatureV1(key, "id2", timestamp, body, sig))
	})
}

// TestSignedHeadersDuringRotation: webhook-signature carries both keys
// during the overlap; logto-signature-sha-256, which can carry one, is made
// with the previous key until the overlap ends, then with the new one.
func TestSignedHeadersDuringRotation(t *testing.T) {
	t.Parallel()
	rotatedAt := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	expires := rotatedAt.Add(time.Hour)
	hook := &Hook{SigningKey: NewSigningKey(), PreviousSigningKey: NewSigningKey(), PreviousKeyExpiresAt: &expires}
	body := []byte(`{"event":"User.Created"}`)

	for _, tt := range []struct {
		name     string
		at       time.Time
		logtoKey string
		entries  int
	}{
		{"Overlap", rotatedAt, hook.PreviousSigningKey, 2},
		{"OverlapsLastSecond", expires.Add(-time.Second), hook.PreviousSigningKey, 2},
		{"AfterOverlap", expires, hook.SigningKey, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			header, err := SignedHeaders(hook, "d1", tt.at, body)
			require.NoError(t, err)
			require.Equal(t, SignatureLogto(tt.logtoKey, body), header.Get("logto-signature-sha-256"))
			entries := strings.Fields(header.Get("webhook-signature"))
			require.Len(t, entries, tt.entries)
			require.True(t, VerifySignatureV1(hook.SigningKey, "d1", tt.at.Unix(), body, entries[0]), "the new key signs first")
		})
	}
}
