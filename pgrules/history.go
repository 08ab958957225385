package pgrules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// ServeNewSince reads the fleet's rules history for the step a ramp is
// at: the first version from which route has had, without a break up to
// version at, the serve_new it has at at (compared as rules.Threshold
// buckets), and how long ago that version was stored by the database's
// clock (so the instances' clocks need not agree). Every instance that
// has applied at gets the same answer. An error when version at has no
// route of that name.
func (s *Store) ServeNewSince(route string, at int64) (since int64, age time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT v.version, EXTRACT(EPOCH FROM (now() - v.created_at))::float8,
	(SELECT (r->>'serve_new')::float8 FROM jsonb_array_elements(v.routes) r WHERE r->>'name' = $1 LIMIT 1)
FROM rules_versions v WHERE v.version <= $2 ORDER BY v.version DESC`, route, at)
	if err != nil {
		return 0, 0, unavailable("read the rules history", err)
	}
	defer rows.Close()
	var want uint32
	first := true
	for rows.Next() {
		var v int64
		var secs float64
		var sn *float64
		if err := rows.Scan(&v, &secs, &sn); err != nil {
			return 0, 0, unavailable("read the rules history", err)
		}
		if first {
			if v != at || sn == nil {
				return 0, 0, fmt.Errorf("pgrules: rules version %d has no route %q", at, route)
			}
			want, first = rules.Threshold(*sn), false
		} else if sn == nil || rules.Threshold(*sn) != want {
			break
		}
		since, age = v, time.Duration(secs*float64(time.Second))
	}
	if err := rows.Err(); err != nil {
		return 0, 0, unavailable("read the rules history", err)
	}
	if first {
		return 0, 0, errors.New("pgrules: no rules version " + fmt.Sprint(at))
	}
	return since, max(age, 0), nil
}
