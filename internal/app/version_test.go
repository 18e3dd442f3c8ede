package app

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	t.Parallel()
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "3353105c415e1b2ae2f3d12c134a31b83713e007"},
		{Key: "vcs.time", Value: "2026-11-26T16:41:46Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	dirty := append(append([]debug.BuildSetting(nil), vcs[:3]...), debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, tc := range []struct {
		name     string
		override string
		bi       *debug.BuildInfo
		want     string
	}{
		{"no build info", "", nil, "dev"},
		{"go run or go test: no module version, no vcs", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"built in a checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261126164146-3353105c415e"}, Settings: vcs},
			"v0.0.0-20261126164146-3353105c415e (commit 3353105c415e, 2026-11-26T16:41:46Z)"},
		{"built from a tag", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: vcs},
			"v1.2.0 (commit 3353105c415e, 2026-11-26T16:41:46Z)"},
		{"uncommitted changes", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261126164146-3353105c415e+dirty"}, Settings: dirty},
			"v0.0.0-20261126164146-3353105c415e+dirty (commit 3353105c415e, 2026-11-26T16:41:46Z, modified)"},
		{"-X Version wins over the module version", "v9.9.9", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: vcs},
			"v9.9.9 (commit 3353105c415e, 2026-11-26T16:41:46Z)"},
		{"vcs without a module version", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"dev (commit 3353105c415e, 2026-11-26T16:41:46Z)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := versionOf(tc.override, tc.bi).String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestReadVersion: the running binary (a test binary: no stamped version) reads as dev with the
// Go release that built it.
func TestReadVersion(t *testing.T) {
	t.Parallel()
	v := ReadVersion()
	if v.Version != "dev" || v.Go == "" {
		t.Errorf("ReadVersion() = %+v", v)
	}
}
