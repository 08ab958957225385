package app

import (
	"time"

	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/store"
)

// DiffStore is what an instance needs of its diff store: the writes the
// data plane's observer and the counter-flush job make, the reads the
// admin API serves (admin.Reports), the counters it exports as metrics,
// and a flush and close for shutdown. The SQLite store (store.Store) is
// the default; a second implementation (the fleet's shared store) must
// keep the guarantees package store's doc lists under "A second
// implementation", which store/storetest checks.
type DiffStore interface {
	// Record enqueues a finished comparison without blocking; false (and
	// a drop counted in Stats) when it cannot be taken.
	Record(ex *exchange.Exchange) bool
	// AddCounters enqueues a delta of route's traffic counters observed
	// at at (zero: now) without blocking; false (and a drop) when it
	// cannot be taken. The caller sends the delta again with the next one.
	AddCounters(route string, at time.Time, delta store.Counters) bool
	admin.Reports
	// Stats are the store's own counters (tandem_store_*).
	Stats() store.StoreStats
	// Flush waits until everything enqueued before it is durable.
	Flush() error
	// Close flushes and releases the store; safe to call more than once.
	Close() error
}

var _ DiffStore = (*store.Store)(nil)
