package store_test

import (
	"path/filepath"
	"testing"

	"github.com/tandem-proxy/tandem/store"
	"github.com/tandem-proxy/tandem/store/storetest"
)

var _ storetest.Store = (*store.Store)(nil)

// The SQLite store keeps the contract a second implementation must keep.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, su storetest.Setup) storetest.Opener {
		path := filepath.Join(t.TempDir(), "store.db")
		return func() (storetest.Store, error) {
			s, err := store.Open(path, store.Options{Noise: su.Noise, Instance: su.Instance})
			if err != nil {
				return nil, err // a nil interface, not a nil *Store
			}
			return s, nil
		}
	})
}
