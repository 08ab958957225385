package rawconn

// IdleState is what a check of an idle connection found.
type IdleState uint8

const (
	IdleClean       IdleState = iota // nothing to read: usable
	IdleClosed                       // the peer closed its side (EOF)
	IdleBroken                       // reset, or another socket error
	IdleUnsolicited                  // bytes no request asked for are waiting
)

func (s IdleState) String() string {
	switch s {
	case IdleClean:
		return "clean"
	case IdleClosed:
		return "closed"
	case IdleBroken:
		return "broken"
	}
	return "unsolicited"
}
