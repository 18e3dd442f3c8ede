package app

import (
	"runtime/debug"
	"strings"
)

// Version overrides the version taken from the build information when set at build time
// (-ldflags "-X github.com/postie/postie/internal/app.Version=v1.2.3").
var Version = ""

// BuildVersion says which source a binary was built from.
type BuildVersion struct {
	// Version is the -X Version above, else the main module's version as the go command stamped
	// it (a tag, or a pseudo-version naming the commit), else "dev".
	Version string
	// Revision, Time and Modified are the commit, its time and whether the work tree had
	// uncommitted changes, when the binary was built in a git checkout (go build -buildvcs=auto,
	// as make build and make run do); empty for go run and go test.
	Revision string
	Time     string
	Modified bool
	// Go is the Go release that built the binary.
	Go string
}

// ReadVersion returns the version of the running binary, from runtime/debug.ReadBuildInfo.
func ReadVersion() BuildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return versionOf(Version, bi)
}

// versionOf is ReadVersion for a given -X Version and build information (nil when the binary
// has none).
func versionOf(override string, bi *debug.BuildInfo) BuildVersion {
	v := BuildVersion{Version: override}
	if bi != nil {
		v.Go = bi.GoVersion
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

// String is the version with the commit it was built from, e.g.
// "v1.2.0 (commit 3353105c415e, 2026-11-26T16:41:46Z, modified)".
func (v BuildVersion) String() string {
	var details []string
	if v.Revision != "" {
		details = append(details, "commit "+v.Revision[:min(12, len(v.Revision))])
	}
	if v.Time != "" {
		details = append(details, v.Time)
	}
	if v.Modified {
		details = append(details, "modified")
	}
	if len(details) == 0 {
		return v.Version
	}
	return v.Version + " (" + strings.Join(details, ", ") + ")"
}
