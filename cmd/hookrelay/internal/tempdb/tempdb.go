// Package tempdb runs a throwaway Postgres cluster from the server binaries
// installed on the machine, for hookrelay demo and bench.
package tempdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres is returned when no Postgres server binaries are installed.
var ErrNoPostgres = errors.New("no Postgres server binaries (initdb, postgres) found on PATH, via pg_config --bindir or in /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) or set DATABASE_URL")

// DB is a throwaway Postgres cluster in a temporary directory.
type DB struct {
	// URL connects to its postgres database.
	URL string

	dir string
	cmd *exec.Cmd
}

// Options configure a cluster.
type Options struct {
	// Durable keeps fsync on, as a production server has it (bench); off,
	// the cluster is faster and as good for a throwaway demo.
	Durable bool
	// Statements loads pg_stat_statements, when the server has it.
	Statements bool
}

// Start initialises and starts a cluster on a free loopback port. As
// root it runs as the postgres user, since initdb refuses root. Call Stop to
// stop it and remove its directory.
func Start(ctx context.Context, opts *Options) (*DB, error) {
	bindir, err := findBindir()
	if err != nil {
		return nil, err
	}
	credential, err := dropRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hookrelay-pg-")
	if err != nil {
		return nil, err
	}
	db := &DB{dir: dir}
	if opts == nil {
		opts = &Options{}
	}
	if err := db.start(ctx, bindir, credential, opts); err != nil {
		db.Stop()
		return nil, err
	}
	return db, nil
}

func (db *DB) start(ctx context.Context, bindir string, credential *syscall.Credential, opts *Options) error {
	if credential != nil {
		if err := os.Chown(db.dir, int(credential.Uid), int(credential.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(db.dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: credential}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLine(out))
	}

	port, err := freePort()
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(db.dir, "postgres.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	fsync := "off"
	if opts.Durable {
		fsync = "on"
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + db.dir,
		"-c", "fsync=" + fsync, "-c", "max_connections=200"}
	if _, err := os.Stat(filepath.Join(bindir, "..", "lib", "pg_stat_statements.so")); err == nil && opts.Statements {
		args = append(args, "-c", "shared_preload_libraries=pg_stat_statements")
	}
	db.cmd = exec.Command(filepath.Join(bindir, "postgres"), args...)
	db.cmd.Stdout, db.cmd.Stderr = log, log
	db.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential, Setpgid: true}
	if err := db.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	db.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, db.URL)
		if err == nil {
			return conn.Close(ctx)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := os.ReadFile(log.Name())
			return fmt.Errorf("postgres did not start: %w: %s", err, lastLine(out))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the cluster down and removes its directory.
func (db *DB) Stop() {
	if db.cmd != nil && db.cmd.Process != nil {
		_ = db.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { _ = db.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = db.cmd.Process.Kill()
			<-done
		}
	}
	_ = os.RemoveAll(db.dir)
}

// Dir is the cluster's directory, removed by Stop.
func (db *DB) Dir() string { return db.dir }

// findBindir returns the directory of initdb and postgres.
func findBindir() (string, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(initdb); err == nil {
			initdb = resolved
		}
		if dir := filepath.Dir(initdb); hasServer(dir) {
			return dir, nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasServer(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if hasServer(dir) {
			return dir, nil
		}
	}
	return "", ErrNoPostgres
}

func versionOf(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}

func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.IsDir() {
			return false
		}
	}
	return true
}

// dropRoot returns the postgres user's credential when running as root, nil
// otherwise.
func dropRoot() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil //nolint:nilnil // no credential needed
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, and initdb refuses root: create a postgres user (the Debian package does) or run as another user")
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
