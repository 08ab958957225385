package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// FleetStatus is GET /api/v1/routes' "fleet" (as a string: "ok" or
// "degraded"), "instance" and "instances" keys, and GET /api/v1/instances.
type FleetStatus struct {
	// Database is "ok", or "degraded" when the database is unreachable from
	// this instance (serving goes on; rule changes get 503).
	Database string
	// Instance is this instance's name (fleet.instance).
	Instance string
	// Instances are the live instances, this one included, by name.
	Instances []InstanceStatus
}

// InstanceStatus is one live instance of the fleet.
type InstanceStatus struct {
	Name           string    `json:"name"`
	StartedAt      time.Time `json:"started_at"`
	LastSeen       time.Time `json:"last_seen"`
	AppliedVersion int64     `json:"applied_version"`
	// Self marks the instance that answered.
	Self bool `json:"self,omitempty"`
}

// ErrUnknownInstance is what Deps.ReportsFor's error wraps for a name no
// instance of the fleet has (answered 404).
var ErrUnknownInstance = errors.New("unknown instance")

// errNotAFleet is the 404 of ?instance= on an instance without
// fleet.database: there are no other instances, and this one has no name
// in any shared store.
const errNotAFleet = "not a fleet: ?instance= needs fleet.database"

// fleetStatus is Deps.Fleet's answer with the defaults filled in: a
// non-nil list, Self set on this instance's entry, a database state.
func (s *Server) fleetStatus() FleetStatus {
	fs := s.deps.Fleet()
	if fs.Database == "" {
		fs.Database = "ok"
	}
	list := make([]InstanceStatus, len(fs.Instances))
	for i, in := range fs.Instances {
		in.Self = in.Self || in.Name == fs.Instance
		list[i] = in
	}
	fs.Instances = list
	return fs
}

// getInstances answers GET /api/v1/instances: this instance's name, the
// database state and the live instances; without a fleet an empty name and
// list (200: a script need not know whether there is a fleet).
func (s *Server) getInstances(w http.ResponseWriter, r *http.Request) {
	if s.deps.Fleet == nil {
		writeJSON(w, http.StatusOK, map[string]any{"instance": "", "instances": []InstanceStatus{}})
		return
	}
	fs := s.fleetStatus()
	writeJSON(w, http.StatusOK, map[string]any{"instance": fs.Instance, "fleet": fs.Database, "instances": fs.Instances})
}

// reportsFor picks the Reports a read answers from: the fleet's
// (Deps.Reports) without ?instance=, Deps.ReportsFor(NAME) with it. It
// answers the refusal itself and returns ok false: ?instance= empty or
// given more than once is 400; on an instance that is not in a fleet, or
// for a name the fleet does not know, 404. name is "" when not narrowed.
func (s *Server) reportsFor(w http.ResponseWriter, q url.Values) (rep Reports, name string, ok bool) {
	v, given := q["instance"]
	switch {
	case !given:
		return s.deps.Reports, "", true
	case len(v) > 1:
		fail(w, http.StatusBadRequest, "instance is given %d times; give it once", len(v))
		return nil, "", false
	case v[0] == "":
		fail(w, http.StatusBadRequest, "instance is empty: give an instance's name (GET /api/v1/instances lists them), or leave it out for the whole fleet")
		return nil, "", false
	case s.deps.Fleet == nil || s.deps.ReportsFor == nil:
		fail(w, http.StatusNotFound, errNotAFleet)
		return nil, "", false
	}
	name = v[0]
	rep, err := s.deps.ReportsFor(name)
	switch {
	case errors.Is(err, ErrUnknownInstance):
		fail(w, http.StatusNotFound, "unknown instance %q (live instances: %s)", name, s.liveNames())
		return nil, "", false
	case err != nil:
		fail(w, http.StatusInternalServerError, "cannot read instance %q: %v", name, err)
		return nil, "", false
	case rep == nil:
		fail(w, http.StatusServiceUnavailable, "reports of instance %q are not available", name)
		return nil, "", false
	}
	return rep, name, true
}

// liveNames lists the live instances' names for an error message.
func (s *Server) liveNames() string {
	fs := s.fleetStatus()
	if len(fs.Instances) == 0 {
		return "none"
	}
	names := make([]string, len(fs.Instances))
	for i, in := range fs.Instances {
		names[i] = in.Name
	}
	return strings.Join(names, ", ")
}

// narrowed adds "instance": name to a read's answer when it was narrowed.
func narrowed(ans map[string]any, name string) map[string]any {
	if name != "" {
		ans["instance"] = name
	}
	return ans
}
