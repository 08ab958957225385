package proxy

import (
	"bytes"
	"errors"
	"strings"

	"github.com/valyala/fasthttp"
)

// errFraming is returned for requests whose message framing is malformed or
// ambiguous (request smuggling vectors). They get 400 and the connection is
// closed; no backend sees them.
type errFraming string

func (e errFraming) Error() string { return string(e) }

var errTooManyConnTokens = errors.New("too many Connection tokens")

// hopByHop lists the hop-by-hop headers of RFC 9110 §7.6.1 plus the de facto
// ones, lower case. Headers named in Connection are removed too.
var hopByHop = [][]byte{
	[]byte("connection"),
	[]byte("proxy-connection"),
	[]byte("keep-alive"),
	[]byte("te"),
	[]byte("transfer-encoding"),
	[]byte("upgrade"),
	[]byte("trailer"),
	[]byte("proxy-authenticate"),
	[]byte("proxy-authorization"),
}

// maxConnTokens bounds the headers a client may name in Connection.
const maxConnTokens = 16

// reqMeta is what the raw-header scan learns about a request.
type reqMeta struct {
	connTokens [maxConnTokens][]byte // lower-cased names from Connection, aliasing scratch
	nTokens    int
	scratch    []byte
	xff        []byte // X-Forwarded-For being built
	hostless   bool   // the client sent no Host and an origin-form target (buildOutbound)
	// underscores says some header name contains '_' (set by scanHeaders).
	underscores bool
	// keepUnderscores is client.underscores_in_headers (set by the handler).
	keepUnderscores bool
}

// ownHeaders are the request headers tandem sets or interprets itself,
// lower case. With client.underscores_in_headers a name that matches one of
// these (or a hop-by-hop header) once '_' is read as '-' is still dropped:
// CGI, WSGI, Rack and PHP would read X_Tandem_Shadow as X-Tandem-Shadow.
var ownHeaders = [][]byte{
	[]byte("x-tandem-shadow"),
	[]byte("x-request-id"),
	[]byte("x-forwarded-for"),
	[]byte("x-forwarded-proto"),
	[]byte("x-forwarded-host"),
	[]byte("content-length"),
	[]byte("host"),
}

// scanHeaders checks the raw request headers for ambiguous framing and
// collects the names listed in Connection. fasthttp tolerates some of these
// (it prefers Transfer-Encoding over Content-Length, for one); a proxy must
// not, or it may frame a request differently from the backend behind it.
func scanHeaders(raw []byte, m *reqMeta) error {
	var nCL, nTE int
	var cl []byte
	m.nTokens = 0
	m.scratch = m.scratch[:0]
	m.underscores = false
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		var line []byte
		if i < 0 {
			line, raw = raw, nil
		} else {
			line, raw = raw[:i], raw[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errFraming("obsolete line folding in headers")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errFraming("malformed header line")
		}
		name := line[:colon]
		if bytes.ContainsAny(name, " \t") {
			return errFraming("whitespace in header name")
		}
		if !m.underscores && bytes.IndexByte(name, '_') >= 0 {
			m.underscores = true
		}
		value := bytes.TrimSpace(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			nCL++
			if len(value) == 0 || !allDigits(value) {
				return errFraming("invalid Content-Length")
			}
			if nCL > 1 && !bytes.Equal(cl, value) {
				return errFraming("conflicting Content-Length headers")
			}
			cl = value
		case equalFold(name, "transfer-encoding"):
			nTE++
			if nTE > 1 || !equalFold(value, "chunked") {
				return errFraming("unsupported Transfer-Encoding (only a single chunked is accepted)")
			}
		case equalFold(name, "connection"):
			if err := m.addTokens(value); err != nil {
				return errFraming(err.Error())
			}
		}
	}
	if nCL > 0 && nTE > 0 {
		return errFraming("both Content-Length and Transfer-Encoding")
	}
	return nil
}

func (m *reqMeta) addTokens(v []byte) error {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) == 0 {
			continue
		}
		if m.nTokens == maxConnTokens {
			return errTooManyConnTokens
		}
		start := len(m.scratch)
		for _, c := range tok {
			m.scratch = append(m.scratch, toLower(c))
		}
		m.connTokens[m.nTokens] = m.scratch[start:len(m.scratch):len(m.scratch)]
		m.nTokens++
	}
	return nil
}

// isHopByHop reports whether a header must not be forwarded: a hop-by-hop
// header, one named in Connection, or (client.underscores_in_headers off, as
// nginx's underscores_in_headers) any name with an underscore. nginx drops
// those because CGI-style servers map '-' and '_' alike to '_'; with the
// switch on, a name that is a hop-by-hop or tandem's own header once '_' is
// read as '-' is dropped all the same.
func (m *reqMeta) isHopByHop(name []byte) bool {
	if m.underscores && bytes.IndexByte(name, '_') >= 0 {
		return !m.keepUnderscores || m.isReservedDashed(name)
	}
	for _, h := range hopByHop {
		if equalFoldBytes(name, h) {
			return true
		}
	}
	for i := 0; i < m.nTokens; i++ {
		if equalFoldBytes(name, m.connTokens[i]) {
			return true
		}
	}
	return false
}

// isReservedDashed reports whether name, with '_' read as '-', is a
// hop-by-hop header, one named in Connection, or one of ownHeaders.
func (m *reqMeta) isReservedDashed(name []byte) bool {
	for _, h := range hopByHop {
		if equalFoldDashed(name, h) {
			return true
		}
	}
	for _, h := range ownHeaders {
		if equalFoldDashed(name, h) {
			return true
		}
	}
	for i := 0; i < m.nTokens; i++ {
		if equalFoldDashed(name, m.connTokens[i]) {
			return true
		}
	}
	return false
}

var (
	hdrXForwardedFor   = []byte("X-Forwarded-For")
	hdrXForwardedProto = []byte("X-Forwarded-Proto")
	hdrXForwardedHost  = []byte("X-Forwarded-Host")
	hdrXRequestID      = []byte("X-Request-Id")
	hdrXTandemShadow   = []byte("X-Tandem-Shadow")
	hdrContentLength   = []byte("Content-Length")
	hdrHost            = []byte("Host")
	hdrCookie          = []byte("Cookie")
	hdrUserAgent       = []byte("User-Agent")
	hdrContentType     = []byte("Content-Type")
	strHTTP            = []byte("http")
	strHTTPS           = []byte("https")
	strCommaSpace      = []byte(", ")
	strSchemeSep       = []byte("://")
	strSlash           = []byte("/")
)

// errUnsendable is returned by buildOutbound for a request that cannot be
// forwarded as it is. It is tandem's own refusal, answered with 400 and a
// plain-text reason; no backend sees the request and no breaker, error rate or
// backend error metric hears of it.
type errUnsendable string

func (e errUnsendable) Error() string { return string(e) }

// buildOutbound writes the request to send upstream into out: method, the
// target in origin-form, Host, end-to-end headers, the request id and the
// X-Forwarded-* set. Content-Length and Transfer-Encoding are left to the
// body setter.
//
// The target: origin-form (/path?query) goes out byte for byte, //x included
// (the client's path is never normalised). Absolute-form
// (http://authority/path) is reduced to origin-form, as RFC 9112 §3.2.2 asks
// of a server; its authority becomes Host and X-Forwarded-Host, in place of a
// Host header the client also sent. Any other form (authority-form, "*", a
// scheme other than http and https) is an errUnsendable.
//
// Host: the client's, not rewritten (not even lower-cased). A request with
// none (HTTP/1.0 allows it) gets defaultHost, the serving backend's host:port,
// and m.hostless is set so that a copy sent to another backend can carry that
// backend's instead (see hostFor). X-Forwarded-Host names the host the client
// asked for, and is left out when it named none.
//
// scheme is the serving backend's (http or https): fasthttp's client sends
// only a URI of its connection's scheme.
//
// out's URI is set from parts, not parsed from a string: fasthttp's parser
// reads a target such as //a/http://b as scheme-relative and would send
// another path to another host.
func buildOutbound(ctx *fasthttp.RequestCtx, m *reqMeta, id []byte, out *fasthttp.Request, defaultHost, scheme []byte) error {
	in := &ctx.Request.Header
	oh := &out.Header
	authority, origin, err := splitTarget(in.RequestURI())
	if err != nil {
		return err
	}
	asked := in.Host()
	if authority != nil {
		asked = authority
	}
	host := asked
	m.hostless = len(host) == 0
	if m.hostless {
		host = defaultHost
	}
	oh.SetMethodBytes(in.Method())
	u := out.URI()
	u.DisablePathNormalizing = true
	u.SetSchemeBytes(scheme)
	u.SetHostBytes(host)
	path, query := origin, origin[len(origin):]
	if q := bytes.IndexByte(origin, '?'); q >= 0 {
		path, query = origin[:q], origin[q+1:]
	}
	if len(path) == 0 {
		path = strSlash // http://h or http://h?q: RFC 9112 §3.2.1
	}
	u.SetPathBytes(path)
	u.SetQueryStringBytes(query)
	oh.SetHostBytes(host)
	out.UseHostHeader = true // fasthttp would write the URI's lower-cased host
	xff := m.xff[:0]
	for k, v := range in.All() {
		switch {
		case m.isHopByHop(k), equalFoldBytes(k, hdrContentLength), equalFoldBytes(k, hdrHost),
			equalFoldBytes(k, hdrXRequestID), equalFoldBytes(k, hdrXTandemShadow):
			continue
		case equalFoldBytes(k, hdrXForwardedFor):
			if len(xff) > 0 {
				xff = append(xff, strCommaSpace...)
			}
			xff = append(xff, v...)
			continue
		case equalFoldBytes(k, hdrXForwardedProto), equalFoldBytes(k, hdrXForwardedHost):
			continue
		}
		oh.AddBytesKV(k, v)
	}
	oh.SetBytesKV(hdrXRequestID, id)
	if len(xff) > 0 {
		xff = append(xff, strCommaSpace...)
	}
	xff, _ = ctx.RemoteIP().AppendText(xff)
	oh.SetBytesKV(hdrXForwardedFor, xff)
	m.xff = xff
	if ctx.IsTLS() {
		oh.SetBytesKV(hdrXForwardedProto, strHTTPS)
	} else {
		oh.SetBytesKV(hdrXForwardedProto, strHTTP)
	}
	if len(asked) > 0 {
		oh.SetBytesKV(hdrXForwardedHost, asked)
	}
	return nil
}

// splitTarget splits a request-target into the authority of an
// absolute-form target (nil for origin-form) and the origin-form part to
// send: path and query, exactly as received (an absolute-form target may
// leave the path empty).
func splitTarget(t []byte) (authority, origin []byte, err error) {
	if len(t) > 0 && t[0] == '/' {
		return nil, t, nil
	}
	i := bytes.Index(t, strSchemeSep)
	if i < 0 {
		return nil, nil, errUnsendable("cannot forward this request target: only origin-form (/path) and absolute-form (http://host/path) are forwarded")
	}
	if scheme := t[:i]; !equalFold(scheme, "http") && !equalFold(scheme, "https") {
		return nil, nil, errUnsendable("cannot forward this request target: the scheme is not http or https")
	}
	rest := t[i+len(strSchemeSep):]
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, origin = rest[:end], rest[end:]
	switch {
	case len(authority) == 0:
		return nil, nil, errUnsendable("cannot forward this request target: absolute-form without a host")
	case !validAuthority(authority):
		return nil, nil, errUnsendable("cannot forward this request target: invalid host (user info, or a character a Host header cannot carry)")
	}
	return authority, origin, nil
}

// validAuthority accepts host[:port] as a Host header may carry it: reg-name
// and IP-literal characters (RFC 3986 §3.2.2), no user info.
func validAuthority(a []byte) bool {
	for _, c := range a {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// copyResponseHeaders copies an upstream response's end-to-end headers to the
// client response. Framing headers are set by the body setter.
func copyResponseHeaders(src *fasthttp.ResponseHeader, dst *fasthttp.ResponseHeader) {
	dst.SetStatusCode(src.StatusCode())
	var conn []byte
	if v := src.Peek("Connection"); len(v) > 0 {
		conn = v
	}
	for k, v := range src.All() {
		if equalFoldBytes(k, hdrContentLength) || isRespHopByHop(k, conn) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
}

func isRespHopByHop(name, conn []byte) bool {
	for _, h := range hopByHop {
		if equalFoldBytes(name, h) {
			return true
		}
	}
	for len(conn) > 0 {
		var tok []byte
		if i := bytes.IndexByte(conn, ','); i >= 0 {
			tok, conn = conn[:i], conn[i+1:]
		} else {
			tok, conn = conn, nil
		}
		if equalFoldBytes(name, bytes.TrimSpace(tok)) {
			return true
		}
	}
	return false
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) <= 18
}

func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if toLower(b[i]) != toLower(s[i]) {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if toLower(a[i]) != toLower(b[i]) {
			return false
		}
	}
	return true
}

// equalFoldDashed is equalFoldBytes with '_' and '-' taken as equal.
func equalFoldDashed(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := toLower(a[i]), toLower(b[i])
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}
