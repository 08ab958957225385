// Package pgramp drives each route's ramp once for a whole fleet of tandem
// instances on PostgreSQL (fleet.database): it is ramp.Fleet, built on
// pgrules (the rules history, the registry of live instances, the fenced
// compare-and-set) and pglease (one lease per ramped route, "ramp:"+route).
//
// # Wiring (tandem serve, with fleet.database set)
//
//	f, err := pgramp.New(ctx, pool, pgramp.Options{Instance: name, Rules: pgrulesStore, Log: log})
//	ctl := ramp.New(ramp.Options{…, State: pgrulesStore, Fleet: f})
//	go f.Run(ctx)
//	…
//	f.Close() // before pgrulesStore.Close() and pool.Close(): releases the leases
//
// New migrates component "ramp" (ramp_snapshots) and pglease's "lease".
// Run starts one pglease.Elector per route that has a ramp and a new
// backend in the rules in force, stops it (releasing the lease) when the
// route loses its ramp, and every SyncEvery (1 s) reads who holds each
// lease, for Status' "driver". Counters gives the error counts.
//
// # How a step is decided
//
// Every instance feeds its own window from its own traffic, as without a
// fleet; the database is never touched from the request path. At each
// Controller tick, per ramped route, every instance:
//  1. derives the route's step key from the rules history: (route,
//     serve_new, the first version from which the route has had that
//     serve_new without a break — pgrules.Store.ServeNewSince), and the
//     step's age by the database's clock (now() − that version's
//     created_at). Every instance that has applied the version gets the
//     same key without talking to the others; 25 → 0 → 25 is a new key, so
//     snapshots of an old step never count for a new one. The hold counts
//     from the step's start fleet-wide, so a new driver neither restarts
//     nor repeats it, and the instances' clocks need not agree;
//  2. publishes its window for that key (ramp.Snapshot: signature counts
//     unclassified, counts incl. the requests served by new, the breaker
//     flag, both HdrHistograms) as its row of ramp_snapshots (route,
//     instance; upserted);
//  3. reads the rows of that key of the instances live in pgrules'
//     registry and merges them (ramp.MergeSnapshots: sums, latencies from
//     the merged histograms, noise classified now with the fleet's noise
//     model), and runs ramp.Step on the sum. So every instance shows the
//     same gates in GET /api/v1/routes, and the gates read the fleet's
//     totals;
//  4. only the lease holder acts: before an advance it checks that every
//     live instance has applied the rules version the step is computed
//     from (pgrules AllApplied; else the decision is "wait", saying so);
//     the step is one transaction — pglease.Fence(term), the rules
//     compare-and-set on that version (ApplyTx), its audit row, NOTIFY —
//     so a stale driver's write is refused (ramp.ErrFenced) and a step
//     computed from an old version fails the compare-and-set. A rollback
//     does not wait for AllApplied (it is the way back to safety); a
//     "ramp_done" is a fenced audit append carrying the step's key (it
//     changes no rules, so the other instances, once the fleet's gates say
//     the ramp is complete, read the audit log until it is there, and show
//     the ramp done too).
//
// When an instance gains a lease it re-derives the key and re-reads the
// audit log before its first decision (a rolled-back ramp stays halted, a
// finished one finished), and since the key and the step's start come
// from the database, it continues the hold where it was.
//
// # Failure cases
//
//   - Driver killed (kill -9, host lost): its lease expires at most TTL
//     after its last renewal and another instance takes it at its next
//     attempt: within TTL + RenewEvery (13 s with the defaults; the fleet's
//     bound is 15 s). A step it committed is seen by the next driver (Fence
//     locks the lease row, so the takeover waited for the commit); a step
//     it did not commit was not taken. Its snapshot counts until it drops
//     out of the registry (LiveWithin, 10 s), its samples being real ones.
//   - Driver paused (GC, SIGSTOP) or partitioned from the database past its
//     lease: another instance drives; when the old one resumes, its Held
//     has turned false (it stops acting), and a write it had already
//     computed is refused by Fence in the database.
//   - Database down or slow: every operation is bounded by Timeout; a
//     failed publish or read is logged (once per outage) and counted, and
//     the ramp waits with the error in its reason — it never steps on data
//     it could not read. Nobody holds the leases during a long outage
//     (pglease steps down); serving goes on with the rules in force, each
//     instance's window keeps counting, and the ramp resumes when the
//     database is back.
//   - An instance lagging a version (not yet applied, or refused by its
//     validator): its registry row's applied version is behind, so the
//     driver waits before the next step until it applies it or is no longer
//     live; its snapshot carries the old key and is not merged into the
//     new step's.
//   - Network partition of some instances: those cut off stop writing
//     their registry rows and snapshots, drop out after LiveWithin, and do
//     not hold the ramp back; they cannot drive (no lease, writes fenced).
//
// Known limits: an instance restarted under the same name publishes a
// fresh window for the same key, so the merged counts drop by what its
// previous run had seen (the gates then need more samples, never fewer).
// At 0%, an instance whose window saw the breaker open and close again
// drops its own samples of that stretch, but the fleet-wide hold is not
// restarted. Rows of routes no longer ramped stay (one per route and
// instance).
package pgramp
