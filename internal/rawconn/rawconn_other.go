//go:build !linux

package rawconn

import "net"

// Wrap returns c: the raw calls are only made on Linux.
func Wrap(c net.Conn) net.Conn { return c }
