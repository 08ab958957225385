package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionInfo is what `tandem version` prints, from the build information
// the Go toolchain embeds (runtime/debug.ReadBuildInfo).
type versionInfo struct {
	// Version is the main module's version: a tag such as v1.2.0, a
	// pseudo-version, or "(devel)" for a build without one.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, with Time its
	// commit time; Modified says the work tree had uncommitted changes.
	// Empty when the build had no VCS information (go run, -buildvcs=false).
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: "(unknown)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
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
	return v
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version [-json]", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	v := buildVersion()
	if *asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	fmt.Fprintf(stdout, "tandem %s\n", v.Version)
	if v.Revision != "" {
		mod := ""
		if v.Modified {
			mod = " (with uncommitted changes)"
		}
		fmt.Fprintf(stdout, "  revision %s%s, committed %s\n", v.Revision, mod, v.Time)
	} else {
		fmt.Fprintln(stdout, "  revision unknown (built without VCS information)")
	}
	fmt.Fprintf(stdout, "  built with %s for %s\n", v.GoVersion, v.Platform)
	return 0
}
