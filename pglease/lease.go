package pglease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/internal/pgmigrate"
)

// Component is this package's name in internal/pgmigrate's ledger.
const Component = "lease"

// Migrations create the lease table. The row of a name is never deleted:
// its epoch only grows, so a token of an old term can never match again.
var Migrations = []pgmigrate.Migration{
	{Version: 1, SQL: `CREATE TABLE lease_leases (
	name TEXT PRIMARY KEY,
	holder TEXT NOT NULL CHECK (holder <> ''),
	epoch BIGINT NOT NULL CHECK (epoch > 0),
	expires_at TIMESTAMPTZ NOT NULL
)`},
}

// ErrFenced is returned by Fence (and Fenced) when the lease row no longer
// has the token's holder and epoch, or the term has expired: the caller is
// a stale driver and must not write.
var ErrFenced = errors.New("pglease: fenced: the lease is no longer held by this token")

// ErrLost is returned by Renew when the term cannot be renewed: another
// holder took the lease, it was released, or it expired.
var ErrLost = errors.New("pglease: lease lost")

// Token names one term of a lease: the holder and the epoch the database
// gave it. Epochs of a name grow by one with every new term.
type Token struct {
	Name   string
	Holder string
	Epoch  int64
}

func (t Token) String() string { return fmt.Sprintf("%s@%s#%d", t.Name, t.Holder, t.Epoch) }

// Store reads and writes lease rows. Its pool must be the database that
// holds the state the leases guard (Fence runs in the caller's
// transaction on the same database).
type Store struct {
	pool *pgxpool.Pool
}

// New applies the lease migrations and returns a Store on pool.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if _, err := pgmigrate.Apply(ctx, pool, Component, Migrations); err != nil {
		return nil, fmt.Errorf("pglease: cannot migrate: %w", err)
	}
	return &Store{pool: pool}, nil
}

func secs(d time.Duration) float64 { return d.Seconds() }

func fromSecs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Acquire takes the lease name for holder when it is free (no row yet) or
// expired, as a new term: epoch+1 (1 for a new name), expiring ttl after
// the database's now(). It returns ok=false, no error, when the lease is
// held by anyone, holder included (a restarted instance waits out its old
// term, or the release of it). remaining is the term's length by the
// database's clock, measured from the start of the statement.
func (s *Store) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (tok Token, remaining time.Duration, ok bool, err error) {
	if name == "" || holder == "" {
		return Token{}, 0, false, errors.New("pglease: cannot acquire: empty name or holder")
	}
	if ttl <= 0 {
		return Token{}, 0, false, fmt.Errorf("pglease: cannot acquire %s: ttl %v must be positive", name, ttl)
	}
	var epoch int64
	var rem float64
	err = s.pool.QueryRow(ctx, `
INSERT INTO lease_leases AS l (name, holder, epoch, expires_at)
VALUES ($1, $2, 1, now() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE
	SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
	WHERE l.expires_at <= now()
RETURNING epoch, EXTRACT(EPOCH FROM (expires_at - now()))::float8`, name, holder, secs(ttl)).Scan(&epoch, &rem)
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, 0, false, nil
	}
	if err != nil {
		return Token{}, 0, false, fmt.Errorf("pglease: cannot acquire %s: %w", name, err)
	}
	return Token{Name: name, Holder: holder, Epoch: epoch}, fromSecs(rem), true, nil
}

// Renew extends tok's term to ttl after the database's now(), keeping its
// epoch. It returns ErrLost when the row has another holder or epoch or
// the term has already expired (an expired term is never revived: taking
// it again is a new term, through Acquire).
func (s *Store) Renew(ctx context.Context, tok Token, ttl time.Duration) (remaining time.Duration, err error) {
	var rem float64
	err = s.pool.QueryRow(ctx, `
UPDATE lease_leases SET expires_at = now() + make_interval(secs => $4)
WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()
RETURNING EXTRACT(EPOCH FROM (expires_at - now()))::float8`, tok.Name, tok.Holder, tok.Epoch, secs(ttl)).Scan(&rem)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: %s", ErrLost, tok)
	}
	if err != nil {
		return 0, fmt.Errorf("pglease: cannot renew %s: %w", tok, err)
	}
	return fromSecs(rem), nil
}

// Release ends tok's term now (expires_at = now(); the row and its epoch
// stay), so that another instance can take the lease at its next attempt
// instead of waiting out the TTL. Releasing a term that is no longer held
// does nothing.
func (s *Store) Release(ctx context.Context, tok Token) error {
	_, err := s.pool.Exec(ctx, `
UPDATE lease_leases SET expires_at = now()
WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`, tok.Name, tok.Holder, tok.Epoch)
	if err != nil {
		return fmt.Errorf("pglease: cannot release %s: %w", tok, err)
	}
	return nil
}

// Current returns the term in force for name: ok=false when there is none
// (never taken, released or expired).
func (s *Store) Current(ctx context.Context, name string) (tok Token, remaining time.Duration, ok bool, err error) {
	var rem float64
	tok.Name = name
	err = s.pool.QueryRow(ctx, `
SELECT holder, epoch, EXTRACT(EPOCH FROM (expires_at - now()))::float8
FROM lease_leases WHERE name = $1 AND expires_at > now()`, name).Scan(&tok.Holder, &tok.Epoch, &rem)
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, 0, false, nil
	}
	if err != nil {
		return Token{}, 0, false, fmt.Errorf("pglease: cannot read %s: %w", name, err)
	}
	return tok, fromSecs(rem), true, nil
}

// Fence checks, inside the caller's transaction tx, that tok's term is
// still the one in force: the row has tok's holder and epoch and has not
// expired by the database's clock_timestamp() (the current time, not the
// transaction's start). It locks the row (SELECT … FOR UPDATE) until tx
// ends, so no other instance can take the lease between the check and the
// commit: an Acquire waits for the commit, and the next holder then sees
// what tx wrote. It returns an error wrapping ErrFenced when tok is stale.
// Call it first in the transaction, before the writes it guards.
func Fence(ctx context.Context, tx pgx.Tx, tok Token) error {
	var holder string
	var epoch int64
	var live bool
	err := tx.QueryRow(ctx, `
SELECT holder, epoch, expires_at > clock_timestamp()
FROM lease_leases WHERE name = $1 FOR UPDATE`, tok.Name).Scan(&holder, &epoch, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %s: no lease row", ErrFenced, tok)
	}
	if err != nil {
		return fmt.Errorf("pglease: cannot fence %s: %w", tok, err)
	}
	if holder != tok.Holder || epoch != tok.Epoch {
		return fmt.Errorf("%w: %s: now held by %s epoch %d", ErrFenced, tok, holder, epoch)
	}
	if !live {
		return fmt.Errorf("%w: %s: term expired", ErrFenced, tok)
	}
	return nil
}

// Fenced runs fn in one transaction that starts with Fence(tok) and
// commits only when fn returns nil: the pattern for every write a lease
// holder makes (see the package doc, "No step twice").
func (s *Store) Fenced(ctx context.Context, tok Token, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pglease: cannot begin for %s: %w", tok, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := Fence(ctx, tx, tok); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pglease: cannot commit for %s: %w", tok, err)
	}
	return nil
}
