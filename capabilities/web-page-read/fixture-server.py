#!/usr/bin/env python3
"""Test fixture for web-page-read: a small web site on loopback and a trap listener.

usage: fixture-server.py DIR HOST [TRAP_HOST]

Serves the pages below on HOST at an ephemeral port. With TRAP_HOST, also listens on TRAP_HOST at
the same port number, TCP and UDP, counting every connection and datagram it gets in
DIR/trap-connections. Writes the port to DIR/port once all listen. Pages that aim elsewhere take
the target URL in ?to=.
"""
import http.server
import os
import socket
import sys
import threading
import urllib.parse

DIR, HOST = sys.argv[1], sys.argv[2]
TRAP_HOST = sys.argv[3] if len(sys.argv) > 3 else None

ARTICLE = """<!doctype html><html><head><title>Governed Reading</title>
<style>body { color: red } .nav { display: block }</style>
<script>window.trackingValue = "tracker-should-not-appear";</script>
</head><body>
<nav class="nav"><a href="/home">Home</a> | <a href="/about">About</a> | menu-boilerplate</nav>
<article><h1>Governed Reading</h1>
<p>The broker decides every call an agent makes, and records it before its effect. This paragraph is
long enough for the extractor to keep it as the body of the article, with a
<a href="/more">link to more</a> that must stay a markdown link.</p>
<p>A second paragraph explains that scripts and styles never reach the markdown, and that a page is
read in its own isolated world so the broker never parses untrusted HTML itself.</p>
<p>A third paragraph closes the article with a sentence about jails, sockets and audit logs.</p>
</article>
<footer>footer-boilerplate copyright notice</footer>
<script>document.write("<p>script-written-" + "text</p>")</script>
</body></html>"""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="text/html; charset=utf-8", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        to = q.get("to", [""])[0]
        p = u.path
        if p in ("/", "/article", "/more"):
            self.send(200, ARTICLE)
        elif p.startswith("/redirect/"):
            self.send(int(p.rsplit("/", 1)[1]), "", headers=[("Location", to)])
        elif p == "/meta":
            self.send(200, f'<html><head><meta http-equiv="refresh" content="0;url={to}"><title>m</title></head><body><p>meta</p></body></html>')
        elif p == "/js":
            self.send(200, f'<html><head><title>j</title><script>location.href = {to!r};</script></head><body><p>js</p></body></html>')
        elif p == "/subresources":
            ws = to.replace("http://", "ws://")
            self.send(200, f"""<html><head><title>Subresources</title>
<link rel="stylesheet" href="{to}style.css"><link rel="dns-prefetch" href="{to}"><link rel="preconnect" href="{to}">
</head><body><article><h1>Subresources</h1><p>This page aims its image, frame, fetch, beacon, worker, WebSocket and WebRTC at another listener, which must see nothing at all.</p>
<img src="{to}img.png"><iframe src="{to}frame"></iframe><script src="{to}script.js"></script>
<script>
fetch({to!r} + "fetch").catch(() => {{}});
navigator.sendBeacon && navigator.sendBeacon({to!r} + "beacon", "x");
try {{ new Worker(URL.createObjectURL(new Blob(["fetch(" + JSON.stringify({to!r} + "worker") + ").catch(()=>{{}})"]))); }} catch (e) {{}}
try {{ new WebSocket({ws!r} + "ws"); }} catch (e) {{}}
try {{
  const pc = new RTCPeerConnection({{ iceServers: [{{ urls: "stun:" + new URL({to!r}).host }}] }});
  pc.createDataChannel("x"); pc.createOffer().then((o) => pc.setLocalDescription(o));
}} catch (e) {{}}
</script></article></body></html>""")
        elif p == "/popup":
            self.send(200, f'<html><head><title>Popup</title><script>window.open({to!r}); window.open({to!r}, "_blank", "popup");</script></head><body><article><p>popup</p></article></body></html>')
        elif p == "/big":
            para = "<p>" + '"quoted" \\back\\slashed words, ' * 400 + "</p>\n"
            self.send(200, "<html><head><title>Big</title></head><body><article>" + para * 120 + "</article></body></html>")
        elif p == "/heavy":
            self.send(200, '<html><head><title>Heavy</title></head><body><article><p>A page that fetches a very large resource.</p><script>fetch("/blob").then((r) => r.arrayBuffer()).catch(() => {})</script></article></body></html>')
        elif p == "/blob":
            self.send(200, b"x" * (40 << 20), "text/plain")
        elif p == "/download":
            self.send(200, b"\x00secret-download\x00", "application/octet-stream", [("Content-Disposition", 'attachment; filename="x.bin"')])
        elif p == "/hang":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"<html><body><p>never finishes")
            self.wfile.flush()
            threading.Event().wait(300)
        elif p == "/cookie/set":
            self.send(200, f"<html><head><title>set</title><script>localStorage.setItem('v', {q['v'][0]!r});</script></head><body><p>set</p></body></html>",
                      headers=[("Set-Cookie", f"v={q['v'][0]}; Path=/")])
        elif p == "/cookie/get":
            cookie = self.headers.get("Cookie") or "none"
            self.send(200, f"<html><head><title>get</title></head><body><article><p id=c>cookie={cookie}</p><p id=s></p></article>"
                      "<script>document.getElementById('s').textContent = 'storage=' + (localStorage.getItem('v') || 'none');</script></body></html>")
        else:
            self.send(404, "<html><body>not found</body></html>")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


count_lock = threading.Lock()
count = 0


def counted():
    global count
    with count_lock:
        count += 1
        with open(os.path.join(DIR, "trap-connections.tmp"), "w") as f:
            f.write(str(count))
        os.rename(os.path.join(DIR, "trap-connections.tmp"), os.path.join(DIR, "trap-connections"))


def trap(sock):
    while True:
        c, _ = sock.accept()
        counted()
        c.close()


def trap_udp(sock):
    while True:
        sock.recvfrom(65536)
        counted()


srv = Server((HOST, 0), Handler)
port = srv.server_address[1]
if TRAP_HOST:
    fam = socket.AF_INET6 if ":" in TRAP_HOST else socket.AF_INET
    t = socket.socket(fam, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((TRAP_HOST, port))
    t.listen(64)
    with open(os.path.join(DIR, "trap-connections"), "w") as f:
        f.write("0")
    threading.Thread(target=trap, args=(t,), daemon=True).start()
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((TRAP_HOST, port))
    threading.Thread(target=trap_udp, args=(u,), daemon=True).start()
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(port))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
srv.serve_forever()
