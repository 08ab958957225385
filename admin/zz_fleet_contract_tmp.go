package admin

// TEMPORARY (branch fleet-app): the contract of branch fleet-admin, so that
// app compiles before the merge; removed when fleet-admin is merged.

import (
	"errors"
	"time"
)

type FleetStatus struct {
	Database  string
	Instance  string
	Instances []InstanceStatus
}

type InstanceStatus struct {
	Name           string    `json:"name"`
	StartedAt      time.Time `json:"started_at"`
	LastSeen       time.Time `json:"last_seen"`
	AppliedVersion int64     `json:"applied_version"`
	Self           bool      `json:"self,omitempty"`
}

var ErrUnknownInstance = errors.New("unknown instance")
