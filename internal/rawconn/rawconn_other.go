//go:build !linux

package rawconn

import "net"

// Usable returns true: connections are only checked on Linux.
func Usable(net.Conn) bool { return true }

// Wrap returns c: the raw calls are only made on Linux.
func Wrap(c net.Conn) net.Conn { return c }

// WrapChecked returns c: connections are only checked on Linux.
func WrapChecked(c net.Conn) net.Conn { return c }
