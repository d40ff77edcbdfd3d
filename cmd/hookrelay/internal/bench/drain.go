package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/receiver"
	"github.com/hookrelay/hookrelay/outbox"
)

// The drain phase measures the shape users deploy: events published through
// the SQL function while no worker runs, then `hookrelay serve` started as a
// process of its own with default settings, delivering to a receiver that is
// a third process and verifies every signature. It also reads the WAL and
// the database's growth that the backlog and its delivery cost.

const drainSchema = "hookrelay_bench_drain"

// DrainResult are the drain phase's figures.
type DrainResult struct {
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	// Ratio is DeliveriesPerS over River's no-op rate of the same run.
	Ratio float64 `json:"ratio"`
	// WALBytesPerDelivery covers publishing, fan-out and delivery.
	WALBytesPerDelivery float64 `json:"wal_bytes_per_delivery"`
	// DatabaseBytesPerEvent is pg_database_size's growth, before retention.
	DatabaseBytesPerEvent float64 `json:"database_bytes_per_event"`
	// CPU per delivery during the drain, in µs, of each process: serve, the
	// receiver (which verifies every signature), and Postgres (all its
	// processes; 0 when it runs out of this machine's sight).
	ServeCPUPerDeliveryUS    float64 `json:"serve_cpu_us_per_delivery"`
	ReceiverCPUPerDeliveryUS float64 `json:"receiver_cpu_us_per_delivery"`
	PostgresCPUPerDeliveryUS float64 `json:"postgres_cpu_us_per_delivery"`
	// Connections is how many connections the receiver accepted, and
	// ConnectionsPer1000 per 1,000 deliveries; over HTTPS each is a TLS
	// handshake (TLSHandshakes).
	Connections        int64   `json:"connections"`
	ConnectionsPer1000 float64 `json:"connections_per_1000_deliveries"`
	TLSHandshakes      int64   `json:"tls_handshakes"`
	// TopStatements are the statements that took the database's time
	// during the drain, when pg_stat_statements is loaded (bench
	// --pg-statements).
	TopStatements []*Statement `json:"top_statements,omitempty"`
}

// Statement is a statement's share of the drain, from pg_stat_statements.
type Statement struct {
	Query   string  `json:"query"`
	Calls   int64   `json:"calls"`
	TotalMS float64 `json:"total_ms"`
	// PerDeliveryUS is its time per delivery of the drain.
	PerDeliveryUS float64 `json:"us_per_delivery"`
}

// resetStatements clears pg_stat_statements and reports whether it is
// loaded.
func resetStatements(ctx context.Context, pool *pgxpool.Pool) bool {
	_, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	if err == nil {
		_, err = pool.Exec(ctx, "SELECT pg_stat_statements_reset()")
	}
	return err == nil
}

// topStatements reads the ten statements that took the most time.
func topStatements(ctx context.Context, pool *pgxpool.Pool, deliveries int64) ([]*Statement, error) {
	rows, err := pool.Query(ctx, `SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 160), calls, total_exec_time
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Statement, error) {
		st := &Statement{}
		err := row.Scan(&st.Query, &st.Calls, &st.TotalMS)
		st.PerDeliveryUS = st.TotalMS * 1000 / float64(deliveries)
		return st, err
	})
}

// drainOptions vary the drain phase.
type drainOptions struct {
	events, hooks, writers int
	// https serves the receiver over TLS, HTTP/1.1 only: every connection
	// is a handshake, as with most receivers behind a load balancer.
	https bool
	// serveProfile, when set, is where a CPU profile of serve during the
	// drain is written.
	serveProfile string
}

// drain runs the phase.
func drain(ctx context.Context, pool *pgxpool.Pool, databaseURL string, o *drainOptions) (*DrainResult, error) {
	events, hooks, writers := o.events, o.hooks, o.writers
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+drainSchema+" CASCADE"); err != nil {
		return nil, err
	}
	defer func() {
		_, _ = pool.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+drainSchema+" CASCADE")
	}()
	store, err := outbox.NewStore(pool, &outbox.Config{Schema: drainSchema})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, err
	}
	receiverAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	scheme := "http"
	env := append(os.Environ(), "DATABASE_URL="+databaseURL, "HOOKRELAY_SCHEMA="+drainSchema)
	receiverArgs := []string{"bench", "receiver", "--addr", receiverAddr}
	counts := &childCounts{client: http.DefaultClient}
	if o.https {
		scheme = "https"
		dir, err := os.MkdirTemp("", "hookrelay-bench-tls")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if counts.client, err = selfSigned(certFile, keyFile); err != nil {
			return nil, err
		}
		receiverArgs = append(receiverArgs, "--tls-cert", certFile, "--tls-key", keyFile)
		// serve trusts the receiver as a system root, as users' serve
		// trusts their receivers' certificates.
		env = append(env, "SSL_CERT_FILE="+certFile)
	}
	counts.url = scheme + "://" + receiverAddr + "/count"
	for i := range hooks {
		_, err := store.CreateHook(ctx, &outbox.HookParams{URL: scheme + "://" + receiverAddr + "/" + strconv.Itoa(i), Events: []string{"*"}})
		if err != nil {
			return nil, err
		}
	}
	rec, err := startChild(ctx, env, receiverArgs...)
	if err != nil {
		return nil, err
	}
	defer rec.stop()
	if err := waitUntil(ctx, 30*time.Second, func() bool { _, err := counts.read(); return err == nil }); err != nil {
		return nil, fmt.Errorf("bench receiver did not start: %w", err)
	}

	walBefore, sizeBefore, err := walAndSize(ctx, pool)
	if err != nil {
		return nil, err
	}
	var next atomic.Int64
	errs := make(chan error, writers)
	for range writers {
		go func() {
			for next.Add(1) <= int64(events) {
				if _, err := store.PublishSQL(ctx, outbox.EventUserCreated, sampleData, nil, "", ""); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			return nil, err
		}
	}

	token := make([]byte, 16)
	_, _ = rand.Read(token)
	serveAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	statements := resetStatements(ctx, pool)
	pg, pgVisible := newPostgresCPU(ctx, pool)
	var pgBefore time.Duration
	if pgVisible {
		if pgBefore, err = pg.read(); err != nil {
			return nil, err
		}
	}
	receiverBefore, err := processCPU(rec.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	serve, err := startChild(ctx, append(env,
		"HOOKRELAY_ADMIN_TOKEN="+hex.EncodeToString(token),
		"HOOKRELAY_ADDR="+serveAddr,
		"HOOKRELAY_ALLOW_CIDRS=127.0.0.1/32",
	), "serve")
	if err != nil {
		return nil, err
	}
	defer serve.stop()
	profiled := make(chan error, 1)
	if o.serveProfile != "" {
		go func() { profiled <- profileServe(ctx, "http://"+serveAddr, hex.EncodeToString(token), o.serveProfile) }()
	} else {
		profiled <- nil
	}
	want := int64(events * hooks)
	var got childCount
	err = waitUntil(ctx, 30*time.Minute, func() bool {
		got, err = counts.read()
		return err == nil && got.Verified >= want
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("%d of %d deliveries arrived: %w", got.Verified, want, err)
	}
	if got.Bad > 0 {
		return nil, fmt.Errorf("%d deliveries had a bad signature", got.Bad)
	}
	serveCPU, err := processCPU(serve.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	receiverAfter, err := processCPU(rec.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	var pgAfter time.Duration
	if pgVisible {
		if pgAfter, err = pg.read(); err != nil {
			return nil, err
		}
	}
	walAfter, sizeAfter, err := walAndSize(ctx, pool)
	if err != nil {
		return nil, err
	}
	if err := <-profiled; err != nil {
		return nil, fmt.Errorf("profile serve: %w", err)
	}
	var top []*Statement
	if statements {
		if top, err = topStatements(ctx, pool, want); err != nil {
			return nil, err
		}
	}
	perDelivery := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(want) }
	return &DrainResult{
		TopStatements:            top,
		DeliveriesPerS:           float64(want) / elapsed.Seconds(),
		WALBytesPerDelivery:      float64(walAfter-walBefore) / float64(want),
		DatabaseBytesPerEvent:    float64(sizeAfter-sizeBefore) / float64(events),
		ServeCPUPerDeliveryUS:    perDelivery(serveCPU),
		ReceiverCPUPerDeliveryUS: perDelivery(receiverAfter - receiverBefore),
		PostgresCPUPerDeliveryUS: perDelivery(pgAfter - pgBefore),
		Connections:              got.Connections,
		ConnectionsPer1000:       float64(got.Connections) * 1000 / float64(want),
		TLSHandshakes:            got.Handshakes,
	}, nil
}

// profileServeSeconds is how long the CPU profile of serve runs, from its
// start: the drain of the default backlog lasts longer.
const profileServeSeconds = 5

// profileServe writes a CPU profile of the serve at url to file, taken
// through its /debug/pprof/ endpoint.
func profileServe(ctx context.Context, url, token, file string) error {
	client := &childCounts{url: url + "/healthz", client: http.DefaultClient}
	if err := waitUntil(ctx, 30*time.Second, func() bool { _, err := client.get(); return err == nil }); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/debug/pprof/profile?seconds="+strconv.Itoa(profileServeSeconds), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// walAndSize reads the WAL position and the database's size.
func walAndSize(ctx context.Context, pool *pgxpool.Pool) (wal, size int64, err error) {
	err = pool.QueryRow(ctx, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, pg_database_size(current_database())").Scan(&wal, &size)
	return wal, size, err
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type child struct {
	cmd  *exec.Cmd
	done chan error
}

// startChild runs this program again with args.
func startChild(ctx context.Context, env []string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hookrelay %v: %w", args, err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	return c, nil
}

// stop ends the child with SIGTERM, and SIGKILL if it lingers.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(40 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

type childCount struct {
	Verified    int64 `json:"verified"`
	Bad         int64 `json:"bad"`
	Connections int64 `json:"connections"`
	Handshakes  int64 `json:"handshakes"`
}

// childCounts reads the receiver's counts (the bench's own loopback
// receiver).
type childCounts struct {
	url    string
	client *http.Client
}

func (c *childCounts) get() (*http.Response, error) {
	resp, err := c.client.Get(c.url) //nolint:noctx // the bench's own loopback receiver
	if err == nil && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errors.New(resp.Status)
	}
	return resp, err
}

func (c *childCounts) read() (childCount, error) {
	var count childCount
	resp, err := c.get()
	if err != nil {
		return count, err
	}
	defer resp.Body.Close()
	return count, json.NewDecoder(resp.Body).Decode(&count)
}

// ReceiverTLS is the certificate of a receiver that serves HTTPS.
type ReceiverTLS struct{ CertFile, KeyFile string }

// Receive runs the drain phase's receiver until ctx ends: it verifies every
// delivery to the schema's hooks, answers 204, and tells its counts at
// GET /count, connections and TLS handshakes included. With tlsFiles it
// serves HTTPS over HTTP/1.1 only.
func Receive(ctx context.Context, pool *pgxpool.Pool, schema, addr string, tlsFiles *ReceiverTLS) error {
	store, err := outbox.NewStore(pool, &outbox.Config{Schema: schema})
	if err != nil {
		return err
	}
	hooks, err := store.ListHooks(ctx)
	if err != nil {
		return err
	}
	var verified, connections, handshakes atomic.Int64
	rec := receiver.New(func(w http.ResponseWriter, _ *receiver.Delivery) {
		verified.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	for _, hook := range hooks {
		rec.AddHook(hook)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(childCount{
			Verified: verified.Load(), Bad: rec.BadSignatures.Load(),
			Connections: connections.Load(), Handshakes: handshakes.Load(),
		})
	})
	mux.Handle("POST /", rec)
	server := &http.Server{
		Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				connections.Add(1)
			}
		},
	}
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	var serveErr error
	if tlsFiles == nil {
		serveErr = server.ListenAndServe()
	} else {
		server.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){} // HTTP/1.1 only
		server.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			VerifyConnection: func(tls.ConnectionState) error {
				handshakes.Add(1)
				return nil
			},
		}
		serveErr = server.ListenAndServeTLS(tlsFiles.CertFile, tlsFiles.KeyFile)
	}
	if !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a
// client that trusts it.
func selfSigned(certFile, keyFile string) (*http.Client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hookrelay bench receiver"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}, nil
}
