package pgrules

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// followLoop reads the versions this instance has not seen, every
// PollInterval and whenever the listener (or a change here) pokes it, and
// the noise marks.
func (s *Store) followLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.o.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.poke:
		}
		s.catchUp()
		if s.o.Learner != nil {
			s.loadMarks()
		}
	}
}

// catchUp puts in force the versions stored after the one in force here.
func (s *Store) catchUp() {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.Timeout)
	defer cancel()
	vs, err := versionsAfter(ctx, s.pool, s.cur.Load().Version, 1<<62)
	if err != nil {
		s.setUp(false, err)
		return
	}
	s.setUp(true, nil)
	s.deliver(vs)
}

// setUp records the database's state, logging its changes.
func (s *Store) setUp(up bool, err error) {
	if s.up.Swap(up) != up {
		if up {
			s.log.Info("fleet database reachable again")
		} else if s.ctx.Err() == nil {
			s.log.Warn("fleet database unreachable: the rules in force stay, changes are refused", "err", err)
		}
	}
}

// listenLoop keeps a connection of its own LISTENing on Channel
// (pgxlisten reconnects after listenRetry); a notification of a version
// newer than the one in force, or a reconnection, pokes followLoop.
func (s *Store) listenLoop() {
	defer s.wg.Done()
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			cfg := s.pool.Config().ConnConfig.Copy()
			cfg.RuntimeParams["application_name"] = listenerName(s.o.Instance)
			ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
			defer cancel()
			return pgx.ConnectConfig(ctx, cfg)
		},
		LogError: func(_ context.Context, err error) {
			if s.ctx.Err() == nil {
				s.log.Debug("rules listener", "err", err)
			}
		},
		ReconnectDelay: s.o.listenRetry,
	}
	l.Handle(Channel, listenHandler{s})
	l.Listen(s.ctx)
}

// listenerName is the application_name of an instance's LISTEN connection.
func listenerName(instance string) string { return "tandem-rules-listen " + instance }

type listenHandler struct{ s *Store }

func (h listenHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if v, err := strconv.ParseInt(n.Payload, 10, 64); err != nil || v > h.s.cur.Load().Version {
		h.s.poked()
	}
	return nil
}

// HandleBacklog runs once LISTEN is in place after each (re)connection:
// versions stored while the listener was away are read at once.
func (h listenHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.s.poked()
	return nil
}
