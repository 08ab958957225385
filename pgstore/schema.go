package pgstore

import (
	"fmt"
	"strings"

	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/pgmigrate"
)

// Counter columns of store_minutes, in the order of a minuteAgg's n.
const (
	colRequests = iota
	colServedLegacy
	colServedNew
	colServedTandem
	colFallback
	colSent
	colSkipSampling
	colSkipQueueFull
	colSkipBreakerOpen
	colSkipTooLarge
	colSkipSpoolFull
	colSkipError
	colCompareErrors
	colLegacyErrors
	colNewErrors
	colServedErrorsLegacy
	colServedErrorsNew
	colServedErrorsTandem
	nCols
)

var colNames = [nCols]string{
	"requests", "served_legacy", "served_new", "served_tandem", "fallback", "sent",
	"skip_sampling", "skip_queue_full", "skip_breaker_open", "skip_too_large", "skip_spool_full", "skip_error",
	"compare_errors", "legacy_errors", "new_errors",
	"served_errors_legacy", "served_errors_new", "served_errors_tandem",
}

var skipCol = map[exchange.Outcome]int{
	exchange.Sampling:    colSkipSampling,
	exchange.QueueFull:   colSkipQueueFull,
	exchange.BreakerOpen: colSkipBreakerOpen,
	exchange.TooLarge:    colSkipTooLarge,
	exchange.SpoolFull:   colSkipSpoolFull,
	exchange.Error:       colSkipError,
}

// component is the schema's pgmigrate component.
const component = "store"

func migrations() []pgmigrate.Migration {
	var cols strings.Builder
	for _, c := range colNames {
		fmt.Fprintf(&cols, "\t%s BIGINT NOT NULL DEFAULT 0,\n", c)
	}
	v1 := `
CREATE TABLE store_minutes (
	route TEXT NOT NULL,
	minute BIGINT NOT NULL,
	instance TEXT NOT NULL,
` + cols.String() + `	hist_legacy BYTEA,
	hist_new BYTEA,
	PRIMARY KEY (route, minute, instance)
);
CREATE INDEX store_minutes_minute ON store_minutes (minute);
CREATE TABLE store_minute_diffs (
	route TEXT NOT NULL,
	minute BIGINT NOT NULL,
	instance TEXT NOT NULL,
	kind TEXT NOT NULL,
	path TEXT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (route, minute, instance, kind, path)
);
CREATE INDEX store_minute_diffs_minute ON store_minute_diffs (minute);
CREATE TABLE store_signatures (
	id BIGSERIAL PRIMARY KEY,
	route TEXT NOT NULL,
	sig TEXT NOT NULL,
	shape BOOLEAN NOT NULL,
	UNIQUE (route, sig)
);
CREATE TABLE store_minute_sigs (
	route TEXT NOT NULL,
	minute BIGINT NOT NULL,
	instance TEXT NOT NULL,
	role SMALLINT NOT NULL,
	sig BIGINT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (route, minute, instance, role, sig)
);
CREATE INDEX store_minute_sigs_minute ON store_minute_sigs (minute);
CREATE TABLE store_samples (
	id TEXT PRIMARY KEY,
	instance TEXT NOT NULL,
	route TEXT NOT NULL,
	request_id TEXT NOT NULL,
	method TEXT NOT NULL,
	path TEXT NOT NULL,
	served_by TEXT NOT NULL,
	at BIGINT NOT NULL,
	outcome TEXT NOT NULL,
	legacy_status INTEGER NOT NULL,
	new_status INTEGER NOT NULL,
	sig TEXT NOT NULL,
	diff_paths TEXT NOT NULL,
	diffs TEXT NOT NULL,
	legacy TEXT NOT NULL,
	new TEXT NOT NULL,
	legacy_body BYTEA,
	new_body BYTEA,
	bytes BIGINT NOT NULL
);
CREATE INDEX store_samples_at ON store_samples (at);
CREATE INDEX store_samples_route_at ON store_samples (route, at);
CREATE TABLE store_sample_paths (
	route TEXT NOT NULL,
	kind TEXT NOT NULL,
	path TEXT NOT NULL,
	instance TEXT NOT NULL,
	sample_id TEXT NOT NULL REFERENCES store_samples (id) ON DELETE CASCADE,
	at BIGINT NOT NULL,
	charged BOOLEAN NOT NULL
);
CREATE INDEX store_sample_paths_key ON store_sample_paths (route, kind, path, at);
CREATE INDEX store_sample_paths_sample ON store_sample_paths (sample_id);
CREATE INDEX store_sample_paths_path ON store_sample_paths (path);
CREATE TABLE store_comparisons (
	seq BIGSERIAL PRIMARY KEY,
	request_id TEXT NOT NULL,
	at BIGINT NOT NULL,
	route TEXT NOT NULL,
	role SMALLINT NOT NULL,
	instance TEXT NOT NULL,
	sig BIGINT NOT NULL,
	outcome TEXT NOT NULL,
	sample_id TEXT NOT NULL,
	bytes BIGINT NOT NULL
);
CREATE INDEX store_comparisons_request ON store_comparisons (request_id);
CREATE INDEX store_comparisons_at ON store_comparisons (at);
`
	// v2: store_batches, per writer incarnation the last batch committed,
	// so that a batch retried after a COMMIT whose reply was lost is not
	// added twice (see "Writes" in the package doc).
	v2 := `
CREATE TABLE store_batches (
	incarnation TEXT PRIMARY KEY,
	seq BIGINT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
`
	return []pgmigrate.Migration{{Version: 1, SQL: v1}, {Version: 2, SQL: v2}}
}
