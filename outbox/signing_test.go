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
