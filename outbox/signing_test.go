package outbox

import (
	"encoding/base64"
	"strings"
	"testing"

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
