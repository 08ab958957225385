package proxy

import "github.com/valyala/fasthttp"

// checkRequestLine refuses request lines that fasthttp parses but nginx
// (1.22, ngx_http_parse_request_line and ngx_http_process_request_header)
// refuses, and that tandem must neither forward nor mirror. It returns 0
// for a request line that may go on, else the status and the reason:
//
//   - a method of anything but upper-case letters, '_' and '-' (get, Get,
//     m1): 400, as nginx's NGX_HTTP_PARSE_INVALID_METHOD. Methods are
//     case-sensitive (RFC 9110 §9.1); a backend that upper-cases them would
//     act on a request the route table matched as something else.
//   - CONNECT: 405 with an origin-form target, 400 with an authority-form
//     one (nginx parses no authority-form), since a proxy in front of one
//     service has no tunnels to open; TRACE: 405, as nginx (it would echo
//     the client's credentials back into a page, "cross-site tracing").
//   - the asterisk form (OPTIONS *): 400, as nginx; it asks about the
//     server, and tandem is not the backends' server.
//   - a version other than HTTP/1.x: 505 for HTTP/2.0 and above (a
//     prior-knowledge h2 or h3 client reached an HTTP/1.1 port), 400 for
//     HTTP/0.x. HTTP/1.2 … 1.9 are taken as HTTP/1.1, as nginx does.
//
// It reads only what fasthttp already parsed, and allocates nothing.
func checkRequestLine(h *fasthttp.RequestHeader) (int, string) {
	m := h.Method()
	for _, c := range m {
		if (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return fasthttp.StatusBadRequest, "invalid request method (methods are upper case)"
		}
	}
	uri := h.RequestURI()
	switch string(m) {
	case fasthttp.MethodConnect:
		if len(uri) == 0 || uri[0] != '/' {
			return fasthttp.StatusBadRequest, "CONNECT is not supported"
		}
		return fasthttp.StatusMethodNotAllowed, "CONNECT is not allowed"
	case fasthttp.MethodTrace:
		return fasthttp.StatusMethodNotAllowed, "TRACE is not allowed"
	}
	if len(uri) == 1 && uri[0] == '*' {
		return fasthttp.StatusBadRequest, "the asterisk-form request target is not supported"
	}
	// fasthttp accepted the version as HTTP/d.d (isHTTPVersion).
	if p := h.Protocol(); len(p) == 8 && p[5] != '1' {
		if p[5] == '0' {
			return fasthttp.StatusBadRequest, "HTTP/0.x is not supported"
		}
		return fasthttp.StatusHTTPVersionNotSupported, "HTTP version not supported; this listener speaks HTTP/1.1"
	}
	return 0, ""
}
