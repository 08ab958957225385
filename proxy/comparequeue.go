package proxy

import (
	"fmt"
	"runtime"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// The compare queue: a mirrored request's two sides finish at their own
// pace (the shadow exchange on a shadow worker, the served response when
// the client has read it), and whichever finishes last hands the pair to a
// bounded queue served by a few compare workers. A shadow worker is freed
// when its exchange ends, never held while a slow client reads the served
// response; comparisons (image decoding, JSON diffs) run on fewer goroutines
// than there are CPUs, so serving keeps the rest; and a full queue drops the
// pair and counts it, as a full shadow pool sheds the shadow.
//
// This is the shape of nginx's thread pools (a fixed set of threads and a
// bounded task queue, "thread pool queue overflow" past it) and of Envoy's
// overload manager shedding optional work first; Go offers no thread
// priorities, so the share is bounded by the number of workers.

// Reasons a finished pair is not compared: the closed label set of
// tandem_compare_dropped_total{reason}.
const (
	DropQueueFull = "queue_full" // limits.compare_queue pairs already waiting
	DropShutdown  = "shutdown"   // the server was shutting down
)

var dropReasons = []string{DropQueueFull, DropShutdown}

// decodeWait is how long an image decode waits for room in the decode
// budget before the pair is compared by hash and size.
const decodeWait = time.Second

// compareMetrics are one route's comparison-work counters.
type compareMetrics struct {
	dropped map[string]*metrics.Counter        // tandem_compare_dropped_total{route,reason}
	limited map[compare.Limit]*metrics.Counter // tandem_compare_limited_total{route,reason}
}

func newCompareMetrics(set *metrics.Set, route string) *compareMetrics {
	m := &compareMetrics{dropped: map[string]*metrics.Counter{}, limited: map[compare.Limit]*metrics.Counter{}}
	for _, r := range dropReasons {
		m.dropped[r] = set.GetOrCreateCounter(fmt.Sprintf(`tandem_compare_dropped_total{route=%q,reason=%q}`, route, r))
	}
	for _, l := range compare.Limits() {
		m.limited[l] = set.GetOrCreateCounter(fmt.Sprintf(`tandem_compare_limited_total{route=%q,reason=%q}`, route, l))
	}
	return m
}

// compareWorkers returns the number of compare workers for n (the config
// value): n itself, or max(1, GOMAXPROCS/2) when n is 0.
func compareWorkers(n int) int {
	if n > 0 {
		return n
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// startCompares makes the compare queue and starts its workers.
func (s *Server) startCompares() {
	s.decode = compare.NewDecodeBudget(s.o.DecodeMemory, decodeWait)
	s.compares = make(chan *shadowJob, max(s.o.CompareQueue, 1))
	for i := 0; i < compareWorkers(s.o.CompareWorkers); i++ {
		s.cmpWorkers.Add(1)
		go s.compareWorker()
	}
	s.m.set.NewGauge("tandem_compare_queued", func() float64 { return float64(len(s.compares)) })
	s.m.set.NewGauge("tandem_decode_memory_bytes", func() float64 { return float64(s.decode.Used()) })
}

// DecodeBudget returns the decode budget the server's comparisons use, for
// the admin heat map to share.
func (s *Server) DecodeBudget() *compare.DecodeBudget { return s.decode }

// arrive marks one side of j finished (the shadow exchange, or the served
// response's capture). The last one hands the pair to the compare queue, or
// releases it when there is nothing to compare. Neither side touches j
// after arriving.
func (s *Server) arrive(j *shadowJob) {
	if j.pending.Add(-1) != 0 {
		return
	}
	if j.noCompare {
		j.release()
		return
	}
	s.cmpMu.RLock()
	if s.cmpClosed {
		s.cmpMu.RUnlock()
		j.rt.m.cmp.dropped[DropShutdown].Inc()
		j.release()
		return
	}
	select {
	case s.compares <- j:
		s.cmpMu.RUnlock()
	default:
		s.cmpMu.RUnlock()
		j.rt.m.cmp.dropped[DropQueueFull].Inc()
		j.release()
	}
}

// closeCompares closes the compare queue: its workers finish what is queued
// and return; pairs completing later are dropped (counted as shutdown).
func (s *Server) closeCompares() {
	s.cmpMu.Lock()
	if !s.cmpClosed {
		s.cmpClosed = true
		close(s.compares)
	}
	s.cmpMu.Unlock()
}

// compareWorker compares queued pairs until the queue is closed.
func (s *Server) compareWorker() {
	defer s.cmpWorkers.Done()
	for j := range s.compares {
		s.compareJob(j)
		j.release()
	}
}

// compareJob compares one finished pair (and legacy with the secondary, when
// the route has one), counts the result and hands it to the observer.
func (s *Server) compareJob(j *shadowJob) {
	rt := j.rt
	ex := &exchange.Exchange{
		Route:     rt.Name,
		RequestID: j.requestID,
		Method:    j.method,
		Path:      j.path,
		ServedBy:  "legacy",
		At:        j.at,
		Secrets:   j.secrets,
	}
	if j.servedByNew {
		ex.ServedBy = "new"
		ex.Legacy, ex.LegacyLatency = j.shadowResp, j.shadowTTFB
		ex.New, ex.NewLatency = j.servedResp, j.servedTTFB
	} else {
		ex.Legacy, ex.LegacyLatency = j.servedResp, j.servedTTFB
		ex.New, ex.NewLatency = j.shadowResp, j.shadowTTFB
	}
	if j.secondary != nil && j.secondary.Err == "" && ex.Legacy.Err == "" {
		sres := rt.comparer.Compare(ex.Legacy, j.secondary)
		s.learner.ObserveSecondary(rt.Name, sres)
		// The flags are the record-time view; readers classify the
		// signature again with the model as it stands when they read.
		s.learner.Apply(rt.Name, &sres)
		ex.Secondary, ex.SecondaryResult = j.secondary, &sres
	}
	res := rt.comparer.Compare(ex.Legacy, ex.New)
	if res.Outcome != compare.OutcomeError {
		s.learner.ObservePrimary(rt.Name, res)
	}
	s.learner.Apply(rt.Name, &res)
	ex.Result = res
	rt.m.compare[res.Outcome].Inc()
	if c := rt.m.cmp.limited[res.Limit]; c != nil {
		c.Inc()
	}
	if res.Outcome == compare.OutcomeMismatch {
		var seen [8]bool
		for _, d := range res.Diffs {
			if d.Noise {
				continue
			}
			for i, k := range mismatchKinds {
				if k == d.Kind && !seen[i] {
					seen[i] = true
					rt.m.mismatch[k].Inc()
				}
			}
		}
	}
	if s.observer != nil {
		s.observer.Observe(ex)
	}
}
