package pgstore

// SetAfterCommit makes s's writer run f after each successful COMMIT; an
// error from f stands for a reply lost after the commit. Call it before
// the first write (the write's enqueue orders it before the writer reads it).
func SetAfterCommit(s *Store, f func() error) { s.afterCommit = f }
