package proxy

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// Captures share one byte budget: past it they keep hashing but stop
// holding bytes, and releasing one returns its bytes to the others.
func TestCaptureBudget(t *testing.T) {
	budget := newMemBudget(100)
	a, b := newCapture(80, budget), newCapture(80, budget)
	body := bytes.Repeat([]byte("x"), 120)
	a.Write(body)
	b.Write(body)
	ra, rb := a.finish(""), b.finish("")
	if len(ra.Body) != 80 || len(rb.Body) != 20 {
		t.Fatalf("held %d and %d bytes, want 80 (its limit) and 20 (the budget's rest)", len(ra.Body), len(rb.Body))
	}
	want := sha256.Sum256(body)
	if ra.SHA256 != want || rb.SHA256 != want || ra.Size != 120 || rb.Size != 120 {
		t.Fatal("a capture over budget must still hash and count the whole body")
	}
	a.release()
	a.release() // idempotent
	if got := budget.left.Load(); got != 80 {
		t.Fatalf("budget after releasing a: %d, want 80", got)
	}
	c := newCapture(80, budget)
	c.Write(body)
	if r := c.finish(""); len(r.Body) != 80 {
		t.Fatalf("after a release a new capture held %d bytes, want 80", len(r.Body))
	}
}
