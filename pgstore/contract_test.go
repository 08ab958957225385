package pgstore_test

import (
	"context"
	"testing"

	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/pgstore"
	"github.com/tandem-proxy/tandem/store/storetest"
)

var _ storetest.Store = (*pgstore.Store)(nil)

// The PostgreSQL store keeps the contract the SQLite store keeps.
func TestContract(t *testing.T) {
	c := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T, su storetest.Setup) storetest.Opener {
		url := c.NewDatabase()
		return func() (storetest.Store, error) {
			s, err := pgstore.Open(context.Background(), url, pgstore.Options{Noise: su.Noise, Instance: su.Instance})
			if err != nil {
				return nil, err // a nil interface, not a nil *Store
			}
			return s, nil
		}
	})
}
