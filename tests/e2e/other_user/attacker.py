"""What another OS user of the machine tries against the person's companion.

Run as that user (the test passes this file's text to `python3 -c` through
setpriv, so the user needs no access to the repository). Standard library
only. Each action prints JSON lines the test reads:

  http METHOD URL [HEADERS_JSON [BODY]]  one request, headers exactly as given
                                         (a forged Origin included); prints
                                         {"status", "body", "headers"} or
                                         {"error"} when the connection failed
  hold HOST PORT                         binds HOST:PORT, prints {"holding"},
                                         and on stdin EOF prints what arrived
  fake-spor                              a Spor look-alike on 127.0.0.1:0 whose
                                         /v1/me copies the person; prints
                                         {"url"}, on stdin EOF {"requests"}
  lock PATH                              opens PATH and flocks it; prints
                                         {"locked"} or {"error"}
"""
import fcntl
import http.server
import json
import socket
import sys
import threading
import urllib.error
import urllib.request


def out(**kv):
    print(json.dumps(kv), flush=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_request(method, url, headers=None, body=None):
    opener = urllib.request.build_opener(NoRedirect)
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=15) as r:
            out(status=r.status, body=r.read().decode(errors="replace"), headers=dict(r.headers))
    except urllib.error.HTTPError as e:
        out(status=e.code, body=e.read().decode(errors="replace"), headers=dict(e.headers))
    except OSError as e:
        out(error=str(e))


def hold(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    # As any server would: connections of the stopped companion may linger.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(16)
    seen = {"connections": 0, "bytes": b""}

    def accept():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            seen["connections"] += 1
            conn.settimeout(2)
            try:
                seen["bytes"] += conn.recv(65536)
            except OSError:
                pass
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    out(holding=f"{host}:{port}")
    sys.stdin.read()
    text = seen["bytes"].decode(errors="replace")
    out(connections=seen["connections"], saw_authorization="authorization:" in text.lower())


def fake_spor():
    count = {"requests": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            count["requests"] += 1
            body = json.dumps({"person": "p1", "name": "Ada Person", "email": "ada@example.test",
                               "org": "acme", "orgs": [{"slug": "acme", "name": "Acme"}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out(url=f"http://127.0.0.1:{server.server_address[1]}")
    sys.stdin.read()
    out(requests=count["requests"])


def lock(path):
    try:
        f = open(path, "a+")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out(locked=path)
    except OSError as e:
        out(error=type(e).__name__, errno=e.errno)


def main(argv):
    action = argv[0]
    if action == "http":
        headers = json.loads(argv[3]) if len(argv) > 3 else {}
        http_request(argv[1], argv[2], headers, argv[4] if len(argv) > 4 else None)
    elif action == "hold":
        hold(argv[1], argv[2])
    elif action == "fake-spor":
        fake_spor()
    elif action == "lock":
        lock(argv[1])
    else:
        out(error=f"unknown action {action}")


main(sys.argv[1:])
