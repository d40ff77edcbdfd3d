package outbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedCodeMatchesQueries fails when queries/ and the committed sqlc
// output disagree: always on the set of queries, and on every byte when sqlc
// is installed (make generate installs it; CI runs it).
func TestGeneratedCodeMatchesQueries(t *testing.T) {
	t.Parallel()

	nameRE := regexp.MustCompile("(?m)(?:^|`)-- name: (\\w+) :")
	names := func(globs ...string) []string {
		var files []string
		for _, glob := range globs {
			matched, err := filepath.Glob(glob)
			require.NoError(t, err)
			require.NotEmpty(t, matched, glob)
			files = append(files, matched...)
		}
		var found []string
		for _, file := range files {
			text, err := os.ReadFile(file)
			require.NoError(t, err)
			for _, m := range nameRE.FindAllStringSubmatch(string(text), -1) {
				found = append(found, m[1])
			}
		}
		slices.Sort(found)
		return found
	}
	require.Equal(t, names("../queries/*.sql"), names("internal/dbsqlc/*.sql.go", "../capture/internal/dbsqlc/*.sql.go"), "run make generate")

	sqlc, err := exec.LookPath("sqlc")
	if err != nil {
		gopathSqlc := filepath.Join(os.Getenv("HOME"), "go", "bin", "sqlc")
		if _, statErr := os.Stat(gopathSqlc); statErr != nil {
			t.Log("sqlc is not installed: compared query names only")
			return
		}
		sqlc = gopathSqlc
	}
	cmd := exec.Command(sqlc, "diff")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "generated code is stale; run make generate:\n%s", strings.TrimSpace(string(out)))
}
