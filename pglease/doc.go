// Package pglease gives each ramp one driver across a fleet of tandem
// instances: a lease per name (one per route, e.g. "ramp:"+route) in
// PostgreSQL, with an epoch that fences writes from a stale driver.
//
// # Table and terms
//
// lease_leases (component "lease" in internal/pgmigrate) has one row per
// name: holder, epoch, expires_at. A term is (name, holder, epoch):
//   - Acquire takes the lease when it has no row or the row has expired, as
//     a new term with epoch+1 (one statement: INSERT … ON CONFLICT DO
//     UPDATE … WHERE expires_at <= now()). A held lease is refused to
//     everyone, its own holder name included, so two processes that share a
//     name (or an instance restarted after a crash) never hold it twice.
//   - Renew extends the term (same epoch) only while it is unexpired and has
//     this holder and epoch; an expired term is never revived.
//   - Release ends the term now (expires_at = now()), so the next attempt of
//     another instance takes it at once instead of after the TTL.
//   - Rows are never deleted: the epoch of a name only grows, so a token of
//     an old term can never match again.
//
// Every time is the database's: expires_at is set from now() and compared
// with now() (clock_timestamp() in Fence, which may run late in a long
// transaction). The instances' wall clocks are never written or compared,
// so clock skew between instances does not matter. An instance only uses
// durations on its own monotonic clock: the database returns each term's
// remaining length (expires_at - now()), and the instance trusts the term
// until start + remaining - Margin, start being its local time before it
// sent the statement, which is no later than the database's now() for it.
//
// # Fencing
//
// Fence(ctx, tx, token) checks, inside the caller's transaction, that the
// row still has the token's holder and epoch and has not expired, and
// locks the row (SELECT … FOR UPDATE) until that transaction ends; it
// returns ErrFenced otherwise. Because of the lock, a takeover that comes
// while the step is in flight waits for its commit, and the new holder then
// sees the step. The lease table must therefore live in the same database
// as the state it guards (the fleet's rules). Store.Fenced wraps a function
// in such a transaction. In a REPEATABLE READ or SERIALIZABLE transaction a
// concurrent takeover surfaces as a serialization error instead of
// ErrFenced: refused either way.
//
// # No step twice (how the ramp driver uses it)
//
// Every step is one transaction: Fence(token), then the rules
// compare-and-set on the version the step was computed from (UPDATE …
// WHERE version = $from), then its audit row; commit. So:
//   - a stale driver (paused, partitioned, or still believing it holds) is
//     refused by Fence whatever it computed;
//   - the next driver, once it holds the lease, re-reads the rules and the
//     ramp state from the database before its first step: a committed step
//     is visible to it (the takeover waited for that commit), so it
//     continues from there and does not repeat it;
//   - a step computed from an old version (a retry whose commit the driver
//     did not see, an in-memory copy out of date) fails the compare-and-set.
//
// The rules store the driver writes through must let it run its
// compare-and-set in a transaction that begins with Fence. Waiting until
// every live instance has applied the previous version is the driver's
// check before it computes a step; it is not part of this package.
//
// # Elector
//
// An Elector runs, for each of its names, one goroutine that tries Acquire
// every RenewEvery while another instance holds the name, and Renew every
// RenewEvery while this instance does. It reports each gain and loss
// through Config.OnChange and answers Held(name), which turns false at the
// local deadline even if the goroutine is stalled. Defaults: TTL 10 s,
// RenewEvery 3 s, Margin TTL/5 = 2 s. An Elector's names are fixed: for
// routes added at run time (a config reload), run one Elector per route.
// Wiring (tandem serve): Holder = fleet.instance; on a gain, the ramp
// driver re-reads the rules and ramp state and starts; on a loss it stops
// before its next step; every step goes through Fence as below; on
// shutdown, cancel Run before closing the pool so the leases are
// released.
//   - Holder dies (kill -9, host lost): its term expires at most TTL after
//     its last renewal; a follower takes it at its next attempt, so within
//     TTL + RenewEvery = 13 s plus a round trip (the fleet's 15 s).
//   - Holder stops cleanly (Run's ctx done): it stops acting, releases, and
//     another instance takes over at its next attempt (≤ RenewEvery). If the
//     release fails, the TTL is the fallback.
//   - The database is unreachable or slow: each renewal attempt is bounded
//     by the deadline; failures are retried every RenewEvery/4 and counted
//     (Errors, Logf). At the deadline (Margin before the earliest possible
//     expiry) the holder reports the loss and Held turns false. Nobody
//     holds during the outage; when the database is back, the old term
//     expires (if it has not) and one instance takes a new term (new epoch).
//   - Holder paused longer than Margin (GC, SIGSTOP, overloaded host): it
//     may report the loss late, after another instance took over; its
//     writes are still refused by Fence. OnChange and Held are for stopping
//     work early, Fence is what makes a stale write impossible.
//   - The row no longer has this term (it expired unrenewed and was taken,
//     or was released): Renew returns ErrLost and the loss is reported at
//     once.
//   - An acquisition whose reply is lost or comes too late to trust (the
//     attempt is bounded by RenewEvery) leaves a term that nobody acts on:
//     it expires unrenewed, a gap of at most TTL, never two holders.
//   - Followers poll; there is no LISTEN/NOTIFY wake-up. A release is picked
//     up within RenewEvery, which is well inside the takeover bound.
//
// The design follows River's leader election (riverqueue/river,
// internal/leadership): a lease row with a database-clock expiry, renewal
// scoped to the exact term, and a local trust window that ends before the
// database expiry so that a holder steps down before anyone else can be
// elected. It differs where a ramp driver needs more than a leader flag:
// many names instead of one, an explicit epoch instead of elected_at as the
// term's identity, release by expiring the row instead of deleting it (so
// epochs never restart), and Fence, so that writes, not only the loop, are
// bound to the term.
//
// Tests run the production design with short timings (TTL 1 s, renew
// 200 ms, margin 200 ms); their bounds are the same expressions of TTL,
// RenewEvery and Margin, and scale to the defaults.
package pglease
