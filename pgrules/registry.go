package pgrules

import (
	"context"
	"fmt"
	"time"
)

// Instance is one row of the registry.
type Instance struct {
	Name           string    `json:"name"`
	StartedAt      time.Time `json:"started_at"`
	LastSeen       time.Time `json:"last_seen"`
	AppliedVersion int64     `json:"applied_version"`
}

// heartbeatLoop writes this instance's registry row every PollInterval and
// soon after a version is applied, and counts the live instances.
func (s *Store) heartbeatLoop() {
	defer s.wg.Done()
	started := time.Now()
	s.heartbeat(started)
	t := time.NewTicker(s.o.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.beat:
		}
		s.heartbeat(started)
	}
}

func (s *Store) heartbeat(started time.Time) {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.Timeout)
	defer cancel()
	// prev is the incarnation that wrote the row before this statement (the
	// CTE reads the statement's snapshot): after this incarnation's first
	// heartbeat, any other one is a second process with the same name.
	var prev *string
	err := s.pool.QueryRow(ctx, `WITH prev AS (SELECT incarnation FROM rules_instances WHERE name = $1)
		INSERT INTO rules_instances (name, started_at, last_seen, applied_version, incarnation) VALUES ($1, $2, now(), $3, $4)
		ON CONFLICT (name) DO UPDATE SET started_at = EXCLUDED.started_at, last_seen = now(),
			applied_version = EXCLUDED.applied_version, incarnation = EXCLUDED.incarnation
		RETURNING (SELECT incarnation FROM prev)`,
		s.o.Instance, started, s.applied.Load(), s.incarnation).Scan(&prev)
	if err != nil {
		s.setUp(false, err)
		return
	}
	if s.beats.Add(1) > 1 && prev != nil && *prev != s.incarnation {
		if s.conflicts.Add(1) == 1 || s.conflicts.Load()%60 == 0 {
			s.log.Error("another process runs with this instance name on the fleet's database: give each instance its own fleet.instance (their registry rows and latency histograms overwrite each other)",
				"instance", s.o.Instance, "conflicts", s.conflicts.Load())
		}
	}
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM rules_instances WHERE last_seen > now() - $1::interval", s.o.LiveWithin).Scan(&n); err != nil {
		s.setUp(false, err)
		return
	}
	s.live.Store(n)
}

// NameConflicts counts the heartbeats that found this instance's registry
// row written by another process since this one's previous heartbeat: two
// processes share the name (tandem_fleet_instance_name_conflicts_total).
func (s *Store) NameConflicts() int64 { return s.conflicts.Load() }

// FleetInstances is the number of live instances counted at the last
// heartbeat (tandem_fleet_instances); from memory.
func (s *Store) FleetInstances() int64 { return s.live.Load() }

// LiveInstances lists the instances whose registry row was written within
// the last within (zero: LiveWithin), by name.
func (s *Store) LiveInstances(within time.Duration) ([]Instance, error) {
	if within <= 0 {
		within = s.o.LiveWithin
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT name, started_at, last_seen, applied_version FROM rules_instances
		WHERE last_seen > now() - $1::interval ORDER BY name`, within)
	if err != nil {
		return nil, unavailable("read the instances", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var in Instance
		if err := rows.Scan(&in.Name, &in.StartedAt, &in.LastSeen, &in.AppliedVersion); err != nil {
			return nil, unavailable("read the instances", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read the instances", err)
	}
	return out, nil
}

// AllApplied reports whether every live instance (seen within LiveWithin)
// has applied version or a later one, as their registry rows say (written
// every PollInterval and soon after each version is applied). An instance
// whose rows stop (dead, or cut off from the database) stops counting
// after LiveWithin.
func (s *Store) AllApplied(version int64) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	var behind int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM rules_instances
		WHERE last_seen > now() - $1::interval AND applied_version < $2`, s.o.LiveWithin, version).Scan(&behind); err != nil {
		return false, unavailable(fmt.Sprintf("read which instances applied version %d", version), err)
	}
	return behind == 0, nil
}
