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
	_, err := s.pool.Exec(ctx, `INSERT INTO rules_instances (name, started_at, last_seen, applied_version) VALUES ($1, $2, now(), $3)
		ON CONFLICT (name) DO UPDATE SET started_at = EXCLUDED.started_at, last_seen = now(), applied_version = EXCLUDED.applied_version`,
		s.o.Instance, started, s.applied.Load())
	if err != nil {
		s.setUp(false, err)
		return
	}
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM rules_instances WHERE last_seen > now() - $1::interval", s.o.LiveWithin).Scan(&n); err != nil {
		s.setUp(false, err)
		return
	}
	s.live.Store(n)
}

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
