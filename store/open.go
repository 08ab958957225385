package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schemaVersion is stored in PRAGMA user_version. Version 2 added the
// served_tandem and served_errors_* columns (migrate adds them to a version 1
// file, zero in its old rows). Version 3 added the signatures, minute_sigs
// and comparisons tables (noise applied at read time): from it on the
// minutes table's matched, mismatched and noise columns are no longer
// written, so they hold only the outcomes recorded before the upgrade, and
// a minute's comparisons are counted by signature in minute_sigs instead.
const schemaVersion = 3

// Counter columns of the minutes table, in the order of a minuteAgg.
const (
	colRequests = iota
	colServedLegacy
	colServedNew
	colFallback
	colSent
	colSkipSampling
	colSkipQueueFull
	colSkipBreakerOpen
	colSkipTooLarge
	colSkipSpoolFull
	colSkipError
	colMatched
	colMismatched
	colNoise
	colCompareErrors
	colLegacyErrors
	colNewErrors
	colServedTandem
	colServedErrorsLegacy
	colServedErrorsNew
	colServedErrorsTandem
	nCols
)

var colNames = [nCols]string{
	"requests", "served_legacy", "served_new", "fallback", "sent",
	"skip_sampling", "skip_queue_full", "skip_breaker_open", "skip_too_large", "skip_spool_full", "skip_error",
	"matched", "mismatched", "noise", "compare_errors", "legacy_errors", "new_errors",
	"served_tandem", "served_errors_legacy", "served_errors_new", "served_errors_tandem",
}

// skipCol maps a skip reason to its column.
var skipCol = map[exchange.Outcome]int{
	exchange.Sampling:    colSkipSampling,
	exchange.QueueFull:   colSkipQueueFull,
	exchange.BreakerOpen: colSkipBreakerOpen,
	exchange.TooLarge:    colSkipTooLarge,
	exchange.SpoolFull:   colSkipSpoolFull,
	exchange.Error:       colSkipError,
}

func schema() string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS minutes (\n\troute TEXT NOT NULL,\n\tminute INTEGER NOT NULL,\n")
	for _, c := range colNames {
		fmt.Fprintf(&b, "\t%s INTEGER NOT NULL DEFAULT 0,\n", c)
	}
	b.WriteString("\thist_legacy BLOB,\n\thist_new BLOB,\n\tPRIMARY KEY (route, minute)\n) WITHOUT ROWID;\n")
	b.WriteString(`
CREATE INDEX IF NOT EXISTS minutes_minute ON minutes (minute);

CREATE TABLE IF NOT EXISTS minute_diffs (
	route TEXT NOT NULL,
	minute INTEGER NOT NULL,
	kind TEXT NOT NULL,
	path TEXT NOT NULL,
	count INTEGER NOT NULL,
	last_at INTEGER NOT NULL,   -- unix ns of the latest observation
	last_noise INTEGER NOT NULL, -- its Noise flag
	PRIMARY KEY (route, minute, kind, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS minute_diffs_minute ON minute_diffs (minute);

-- Version 3: each route's distinct signatures (compare.Signature.Key),
-- numbered from 1; ids 0 (match), -1 (overflow) and -2 (compare error) are
-- reserved and not stored. Bounded per route (maxSignatures).
CREATE TABLE IF NOT EXISTS signatures (
	route TEXT NOT NULL,
	id INTEGER NOT NULL,
	sig TEXT NOT NULL,
	shape INTEGER NOT NULL,     -- 1 when sig is the Shape kept past maxFullSignatures
	PRIMARY KEY (route, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS signatures_sig ON signatures (route, sig);

-- Version 3: comparisons per (route, minute, role, signature). role 0 is
-- legacy vs new, 1 legacy vs secondary. Primary compare errors stay in
-- minutes.compare_errors; secondary ones are sig -2 here.
CREATE TABLE IF NOT EXISTS minute_sigs (
	route TEXT NOT NULL,
	minute INTEGER NOT NULL,
	role INTEGER NOT NULL,
	sig INTEGER NOT NULL,
	count INTEGER NOT NULL,
	PRIMARY KEY (route, minute, role, sig)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS minute_sigs_minute ON minute_sigs (minute);

-- Version 3: one row per comparison, kept for ComparisonRetention and
-- within MaxBytes (with the samples).
CREATE TABLE IF NOT EXISTS comparisons (
	seq INTEGER PRIMARY KEY,    -- recording order
	request_id TEXT NOT NULL,
	at INTEGER NOT NULL,        -- unix ns
	route TEXT NOT NULL,
	role INTEGER NOT NULL,
	instance TEXT NOT NULL,
	sig INTEGER NOT NULL,
	outcome TEXT NOT NULL,      -- as recorded (the learner's view then)
	sample_id TEXT NOT NULL,    -- "" when no sample was stored
	bytes INTEGER NOT NULL      -- what the row counts against MaxBytes
);
CREATE INDEX IF NOT EXISTS comparisons_request ON comparisons (request_id);
CREATE INDEX IF NOT EXISTS comparisons_at ON comparisons (at);

CREATE TABLE IF NOT EXISTS samples (
	id TEXT PRIMARY KEY,
	route TEXT NOT NULL,
	request_id TEXT NOT NULL,
	method TEXT NOT NULL,
	path TEXT NOT NULL,
	served_by TEXT NOT NULL,
	at INTEGER NOT NULL,        -- unix ns
	outcome TEXT NOT NULL,
	diff_paths TEXT NOT NULL,   -- JSON array of the differences' paths
	diffs BLOB NOT NULL,        -- JSON []compare.Difference, redacted
	legacy BLOB NOT NULL,       -- JSON side metadata, redacted
	new BLOB NOT NULL,
	legacy_body BLOB,
	new_body BLOB,
	bytes INTEGER NOT NULL      -- what the sample counts against MaxBytes
);
CREATE INDEX IF NOT EXISTS samples_at ON samples (at);
CREATE INDEX IF NOT EXISTS samples_route_at ON samples (route, at);

CREATE TABLE IF NOT EXISTS sample_paths (
	route TEXT NOT NULL,
	kind TEXT NOT NULL,
	path TEXT NOT NULL,
	sample_id TEXT NOT NULL,
	at INTEGER NOT NULL,
	charged INTEGER NOT NULL,   -- 1 if the sample counts against this key's cap
	PRIMARY KEY (route, kind, path, sample_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sample_paths_sample ON sample_paths (sample_id);
CREATE INDEX IF NOT EXISTS sample_paths_path ON sample_paths (path, at);
`)
	return b.String()
}

var sqliteHeader = []byte("SQLite format 3\x00")

// Open opens (creating if needed) the store at path, normally
// <data_dir>/store.db, and starts its writer and janitor goroutines. The
// directory is created with mode 0700 if missing; the file and its -wal and
// -shm companions get mode 0600. A file that is not an SQLite database, or
// that SQLite finds corrupt, is an error naming the file.
func Open(path string, o Options) (*Store, error) {
	o.fill()
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("cannot open store %s: the path must not contain '?' or '#'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot open store %s: %w", path, err)
	}
	if err := prepareFile(path); err != nil {
		return nil, fmt.Errorf("cannot open store %s: %w", path, err)
	}
	s, err := open(path, o)
	if err != nil {
		return nil, fmt.Errorf("cannot open store %s: %w", path, err)
	}
	s.q = make(chan item, o.QueueSize)
	s.janitorKick = make(chan struct{}, 1)
	s.closing = make(chan struct{})
	s.stop = make(chan struct{})
	s.writerDone = make(chan struct{})
	s.janitorDone = make(chan struct{})
	go s.runWriter()
	if o.noJanitor {
		close(s.janitorDone)
	} else {
		go s.runJanitor()
	}
	return s, nil
}

// prepareFile creates path with mode 0600 (or tightens an existing file's
// mode, and its -wal and -shm files') before SQLite opens it: SQLite gives
// the journal files the database file's mode. It also rejects a non-empty
// file that does not start with the SQLite header.
func prepareFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	head := make([]byte, len(sqliteHeader))
	n, rerr := io.ReadFull(f, head)
	cerr := f.Close()
	switch {
	case rerr == nil && !bytes.Equal(head, sqliteHeader):
		return errors.New("not an SQLite database (bad header); move it away to start a new store")
	case rerr == io.ErrUnexpectedEOF && n > 0:
		return errors.New("not an SQLite database (truncated header); move it away to start a new store")
	case rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF:
		return rerr
	case cerr != nil:
		return cerr
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func dsn(path string, o Options, readOnly bool) string {
	q := "_pragma=busy_timeout(10000)&_pragma=synchronous(" + o.synchronous + ")"
	if readOnly {
		q += "&_pragma=query_only(1)"
	} else {
		// auto_vacuum only takes effect on a new file; the janitor returns
		// freed pages with incremental_vacuum.
		// journal_size_limit truncates the WAL back to 64 MiB after a
		// checkpoint (SQLite checkpoints every 1000 pages by itself).
		q += "&_auto_vacuum=INCREMENTAL&_pragma=journal_mode(WAL)&_pragma=journal_size_limit(67108864)&_txlock=immediate"
	}
	return path + "?" + q
}

func open(path string, o Options) (_ *Store, err error) {
	s := &Store{path: path, o: o, pathCounts: map[SampleKey]int{}, hists: map[minuteKey]*minuteHists{},
		sigs: map[string]*routeSigs{}, parsed: map[sigRef]compare.Signature{}}
	ctx := context.Background()

	s.wdb, err = sql.Open("sqlite", dsn(path, o, false))
	if err != nil {
		return nil, err
	}
	s.wdb.SetMaxOpenConns(1)
	defer func() {
		if err != nil {
			s.stmts.close()
			s.wdb.Close()
			if s.rdb != nil {
				s.rdb.Close()
			}
		}
	}()
	var mode string
	if err = s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, err
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("journal mode is %q, want wal", mode)
	}
	var version int
	if err = s.wdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, err
	}
	if version > schemaVersion {
		return nil, fmt.Errorf("schema version %d is newer than this tandem's (%d)", version, schemaVersion)
	}
	if _, err = s.wdb.ExecContext(ctx, schema()); err != nil {
		return nil, fmt.Errorf("cannot create schema: %w", err)
	}
	if err = migrate(ctx, s.wdb); err != nil {
		return nil, fmt.Errorf("cannot migrate schema from version %d: %w", version, err)
	}
	if _, err = s.wdb.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return nil, err
	}
	if err = s.stmts.prepare(ctx, s.wdb); err != nil {
		return nil, err
	}
	var total int64
	if err = s.wdb.QueryRowContext(ctx, "SELECT COALESCE(SUM(bytes), 0) FROM samples").Scan(&total); err != nil {
		return nil, err
	}
	s.sampleBytes.Store(total)
	if err = s.wdb.QueryRowContext(ctx, "SELECT COALESCE(SUM(bytes), 0) FROM comparisons").Scan(&total); err != nil {
		return nil, err
	}
	s.compBytes.Store(total)

	s.rdb, err = sql.Open("sqlite", dsn(path, o, true))
	if err != nil {
		return nil, err
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	if err = s.rdb.PingContext(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// migrate adds the counter columns an older file's minutes table lacks, in
// one transaction; old rows read 0 in them. (The tables of version 3 are
// created by schema's CREATE TABLE IF NOT EXISTS; a version 2 file's rows
// are kept as they are.)
func migrate(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info('minutes')")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, c := range colNames {
		if !have[c] {
			if _, err := tx.ExecContext(ctx, "ALTER TABLE minutes ADD COLUMN "+c+" INTEGER NOT NULL DEFAULT 0"); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// writeStmts are the writer's statements, prepared once on the write
// connection.
type writeStmts struct {
	selectHists, upsertMinute, upsertDiff, countPath, insertSample, insertSamplePath *sql.Stmt
	selectSigs, insertSig, upsertSigCount                                            *sql.Stmt
	// insertComparisons[i] inserts comparisonInserts[i] rows.
	insertComparisons [len(comparisonInserts)]*sql.Stmt
}

// Comparison rows are inserted several to a statement: as many of the
// largest size as fit, then of the smaller ones (comparisonInserts, in
// decreasing order, ending with 1); a row has comparisonCols values.
var comparisonInserts = [...]int{64, 16, 4, 1}

const (
	comparisonsPerInsert = 64 // comparisonInserts[0]
	comparisonCols       = 9
)

func (w *writeStmts) all() []**sql.Stmt {
	return []**sql.Stmt{&w.selectHists, &w.upsertMinute, &w.upsertDiff, &w.countPath, &w.insertSample, &w.insertSamplePath,
		&w.selectSigs, &w.insertSig, &w.upsertSigCount,
		&w.insertComparisons[0], &w.insertComparisons[1], &w.insertComparisons[2], &w.insertComparisons[3]}
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	cols := strings.Join(colNames[:], ", ")
	var sets []string
	for _, c := range colNames {
		sets = append(sets, fmt.Sprintf("%s = %s + excluded.%s", c, c, c))
	}
	upsertMinute := fmt.Sprintf(`INSERT INTO minutes (route, minute, %s, hist_legacy, hist_new)
		VALUES (?, ?, %s?, ?)
		ON CONFLICT (route, minute) DO UPDATE SET %s,
			hist_legacy = COALESCE(excluded.hist_legacy, hist_legacy),
			hist_new = COALESCE(excluded.hist_new, hist_new)`,
		cols, strings.Repeat("?, ", nCols), strings.Join(sets, ", "))
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&w.selectHists, "SELECT hist_legacy, hist_new FROM minutes WHERE route = ? AND minute = ?"},
		{&w.upsertMinute, upsertMinute},
		{&w.upsertDiff, `INSERT INTO minute_diffs (route, minute, kind, path, count, last_at, last_noise)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (route, minute, kind, path) DO UPDATE SET
				count = count + excluded.count,
				last_noise = CASE WHEN excluded.last_at >= last_at THEN excluded.last_noise ELSE last_noise END,
				last_at = MAX(last_at, excluded.last_at)`},
		{&w.countPath, "SELECT COUNT(*) FROM sample_paths WHERE route = ? AND kind = ? AND path = ? AND charged = 1"},
		{&w.insertSample, `INSERT INTO samples (id, route, request_id, method, path, served_by, at, outcome,
			diff_paths, diffs, legacy, new, legacy_body, new_body, bytes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.insertSamplePath, `INSERT OR IGNORE INTO sample_paths (route, kind, path, sample_id, at, charged)
			VALUES (?, ?, ?, ?, ?, ?)`},
		{&w.selectSigs, "SELECT id, sig FROM signatures WHERE route = ?"},
		{&w.insertSig, "INSERT INTO signatures (route, id, sig, shape) VALUES (?, ?, ?, ?)"},
		{&w.upsertSigCount, `INSERT INTO minute_sigs (route, minute, role, sig, count) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (route, minute, role, sig) DO UPDATE SET count = count + excluded.count`},
		{&w.insertComparisons[0], insertComparisonsSQL(comparisonInserts[0])},
		{&w.insertComparisons[1], insertComparisonsSQL(comparisonInserts[1])},
		{&w.insertComparisons[2], insertComparisonsSQL(comparisonInserts[2])},
		{&w.insertComparisons[3], insertComparisonsSQL(comparisonInserts[3])},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("cannot prepare %q: %w", p.sql, err)
		}
		*p.st = st
	}
	return nil
}

// insertComparisonsSQL is the statement that inserts n comparison rows.
func insertComparisonsSQL(n int) string {
	return "INSERT INTO comparisons (request_id, at, route, role, instance, sig, outcome, sample_id, bytes) VALUES " +
		strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", n-1) + "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
}

// in returns the statements bound to tx. The statements are prepared on
// the pool's one connection, so database/sql reuses them.
func (w *writeStmts) in(ctx context.Context, tx *sql.Tx) *writeStmts {
	out := &writeStmts{}
	dst := out.all()
	for i, st := range w.all() {
		*dst[i] = tx.StmtContext(ctx, *st)
	}
	return out
}

func (w *writeStmts) close() {
	for _, st := range w.all() {
		if *st != nil {
			(*st).Close()
		}
	}
}
