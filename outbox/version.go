package outbox

import "runtime/debug"

// Version is hookrelay's version, sent in every delivery's User-Agent as
// hookrelay/<Version> and logged by serve: the version of the module it was
// built as, which Go takes from the release tag or the commit (a
// pseudo-version, +dirty when the checkout had changes), or else the commit
// (devel+<commit>), or devel when the build recorded neither (go build
// -buildvcs=false, or a build outside a checkout). A packager may set it:
// go build -ldflags "-X github.com/hookrelay/hookrelay/outbox.Version=v1.2.3".
var Version = "" //nolint:gochecknoglobals // set by the build

// UserAgent is the User-Agent of every delivery.
var UserAgent = "hookrelay/" + Version //nolint:gochecknoglobals // follows Version

const modulePath = "github.com/hookrelay/hookrelay"

func init() { //nolint:gochecknoinits // Version comes from the build
	if Version == "" {
		Version = buildVersion()
	}
	UserAgent = "hookrelay/" + Version
}

// buildVersion is hookrelay's version as the build recorded it: of the main
// module when hookrelay is the program, of the dependency when it is a
// library.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	version := ""
	if info.Main.Path == modulePath {
		version = info.Main.Version
	}
	for _, dep := range info.Deps {
		if dep.Path == modulePath {
			version = dep.Version
		}
	}
	if version != "" && version != "(devel)" {
		return version
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	revision := settings["vcs.revision"]
	if revision == "" {
		return "devel"
	}
	version = "devel+" + revision[:min(12, len(revision))]
	if settings["vcs.modified"] == "true" {
		version += ".dirty"
	}
	return version
}
