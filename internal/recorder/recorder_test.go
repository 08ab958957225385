package recorder

import (
	"testing"
	"time"
)

func TestLog(t *testing.T) {
	var l Log[int]
	done := make(chan bool)
	go func() { done <- l.Wait(3, 5*time.Second, nil) }()
	for i := 0; i < 3; i++ {
		l.Add(i)
	}
	if !<-done {
		t.Fatal("Wait did not see 3 items")
	}
	all := l.All()
	all[0] = 99
	if got := l.All(); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("All = %v (must be a copy, in order)", got)
	}
	if l.Wait(4, 20*time.Millisecond, nil) {
		t.Fatal("Wait(4) succeeded with 3 items")
	}
	stop := make(chan struct{})
	close(stop)
	if l.Wait(10, time.Hour, stop) {
		t.Fatal("Wait succeeded after stop")
	}
	l.Reset()
	if l.Len() != 0 {
		t.Fatal("Reset kept items")
	}
}
