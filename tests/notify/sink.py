#!/usr/bin/python3
"""Local notification sink for tests: an SMTP receiver and an HTTPS webhook receiver.

Started by a test as a subprocess. Writes one JSON object per received message
(e-mail or webhook POST) to --out, prints one ready line with the bound ports
and the CA file to stdout, then runs until SIGTERM/SIGINT or until stdin
reaches EOF (so it dies together with its parent, which must keep a pipe to
its stdin open).

Requires only the Python standard library, the `openssl` command line tool and
aiosmtpd (Debian: python3-aiosmtpd).

Usage:
  sink.py --dir DIR --out FILE [--smtp-user U --smtp-password P]
          [--webhook-secret whsec_...] [--webhook-fail-first N]
          [--webhook-delay-ms D] [--smtp-port P] [--https-port P]

Ready line (stdout, exactly one line):
  {"smtp_port": 12345, "https_port": 23456, "ca_file": "/abs/DIR/cert.pem"}

Records (--out, one JSON object per line, fsync'd):
  {"channel": "smtp", "mail_from", "rcpt_tos", "data", "message_id",
   "subject", "tls", "auth_user"}
  {"channel": "webhook", "path", "webhook_id", "webhook_timestamp",
   "webhook_signature", "content_type", "body", "signature_valid", "accepted"}
"""

import argparse
import base64
import binascii
import fcntl
import hashlib
import hmac
import http.server
import json
import logging
import os
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


# --------------------------------------------------------------------------
# Certificate


def ensure_certificate(directory):
    """Create (or reuse) DIR/cert.pem and DIR/key.pem; return their abs paths."""
    directory = os.path.abspath(directory)
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    # Serialise concurrent sinks sharing the directory (lock the directory
    # itself, so no extra file is left behind).
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        if os.path.exists(cert) and os.path.exists(key) and _cert_still_valid(cert):
            return cert, key
        tmp_cert = cert + ".tmp.%d" % os.getpid()
        tmp_key = key + ".tmp.%d" % os.getpid()
        try:
            subprocess.run(
                [
                    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", tmp_key, "-out", tmp_cert,
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            os.chmod(tmp_key, 0o600)
            os.replace(tmp_key, key)
            os.replace(tmp_cert, cert)
        finally:
            for p in (tmp_cert, tmp_key):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
    finally:
        os.close(dir_fd)  # releases the lock
    return cert, key


def _cert_still_valid(cert):
    """True unless the certificate expires within the next hour."""
    r = subprocess.run(
        ["openssl", "x509", "-noout", "-checkend", "3600", "-in", cert],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return r.returncode == 0


def server_ssl_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # check_hostname off, CERT_NONE
    ctx.load_cert_chain(cert, key)
    return ctx


# --------------------------------------------------------------------------
# Output


class Recorder:
    """Appends JSON lines to a file; thread-safe, flushed and fsync'd per line."""

    def __init__(self, path):
        self._lock = threading.Lock()
        self._f = open(path, "a", encoding="utf-8")

    def record(self, obj):
        line = json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self):
        with self._lock:
            self._f.close()


# --------------------------------------------------------------------------
# SMTP


def make_authenticator(user, password):
    want_user = user.encode("utf-8") if user is not None else None
    want_pass = password.encode("utf-8") if password is not None else None

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = False
        if (want_user is not None and want_pass is not None
                and isinstance(auth_data, LoginPassword)):
            # Evaluate both comparisons (no short-circuit).
            u_ok = hmac.compare_digest(bytes(auth_data.login), want_user)
            p_ok = hmac.compare_digest(bytes(auth_data.password), want_pass)
            ok = u_ok and p_ok
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return authenticator


class SmtpHandler:
    def __init__(self, recorder):
        self._recorder = recorder

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        message_id = None
        subject = None
        try:
            msg = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
            mid = msg.get("Message-ID")
            if mid is not None:
                message_id = str(mid).strip()
            subj = msg.get("Subject")
            if subj is not None:
                subject = str(subj)
        except Exception:  # malformed headers: still record the message
            pass
        auth_user = None
        if session.authenticated and session.auth_data is not None:
            login = getattr(session.auth_data, "login", None)
            if isinstance(login, bytes):
                auth_user = login.decode("utf-8", errors="replace")
            elif login is not None:
                auth_user = str(login)
        self._recorder.record({
            "channel": "smtp",
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", errors="replace"),
            "message_id": message_id,
            "subject": subject,
            "tls": session.ssl is not None,
            "auth_user": auth_user,
        })
        return "250 2.0.0 Message accepted for delivery"


class SinkController(Controller):
    """Controller that supports port 0: learns the bound port before the
    self-test connection that aiosmtpd makes in start()."""

    def _trigger_server(self):
        if not self.port and self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_smtp(args, recorder, cert, key):
    controller = SinkController(
        SmtpHandler(recorder),
        hostname="127.0.0.1",
        port=args.smtp_port,
        server_hostname="localhost",
        tls_context=server_ssl_context(cert, key),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=make_authenticator(args.smtp_user, args.smtp_password),
    )
    controller.start()
    return controller, controller.port


# --------------------------------------------------------------------------
# HTTPS webhooks


def decode_webhook_secret(secret):
    if secret is None:
        return None
    s = secret.strip()
    if s.startswith("whsec_"):
        s = s[len("whsec_"):]
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None


def verify_signature(key, webhook_id, webhook_timestamp, body, header):
    """Standard Webhooks v1 (HMAC-SHA256) verification."""
    if key is None or webhook_id is None or webhook_timestamp is None or not header:
        return False
    signed = ("%s.%s." % (webhook_id, webhook_timestamp)).encode("utf-8") + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    valid = False
    for entry in header.split():
        version, sep, sig = entry.partition(",")
        if sep and version == "v1":
            if hmac.compare_digest(sig.encode("utf-8", errors="replace"), expected):
                valid = True
    return valid


class WebhookState:
    def __init__(self, recorder, key, fail_first, delay_ms):
        self.recorder = recorder
        self.key = key
        self.fail_first = fail_first
        self.delay_s = max(0, delay_ms) / 1000.0
        self._lock = threading.Lock()
        self._posts = 0

    def next_post_accepted(self):
        with self._lock:
            self._posts += 1
            return self._posts > self.fail_first


class WebhookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "notify-sink/1"
    sys_version = ""
    timeout = 60  # per-connection socket timeout

    def log_message(self, format, *args):  # noqa: A002 - silence access log
        pass

    def _respond(self, code, obj, extra_headers=()):
        body = (json.dumps(obj) + "\n").encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self._read_exact(size))
                self.rfile.readline(65537)  # CRLF after chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self._read_exact(length)

    def _read_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            part = self.rfile.read(n - len(buf))
            if not part:
                raise ConnectionError("eof in body")
            buf += part
        return bytes(buf)

    def do_POST(self):
        state = self.server.state
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            try:
                self._respond(400, {"ok": False, "error": "bad body"})
            except OSError:
                pass
            return
        accepted = state.next_post_accepted()
        webhook_id = self.headers.get("webhook-id")
        webhook_ts = self.headers.get("webhook-timestamp")
        webhook_sig = self.headers.get("webhook-signature")
        valid = verify_signature(state.key, webhook_id, webhook_ts, body, webhook_sig)
        if state.delay_s:
            time.sleep(state.delay_s)
        state.recorder.record({
            "channel": "webhook",
            "path": self.path,
            "webhook_id": webhook_id,
            "webhook_timestamp": webhook_ts,
            "webhook_signature": webhook_sig,
            "content_type": self.headers.get("Content-Type"),
            "body": body.decode("utf-8", errors="replace"),
            "signature_valid": valid,
            "accepted": accepted,
        })
        if accepted:
            self._respond(200, {"ok": True})
        else:
            self._respond(503, {"ok": False, "error": "failing first requests"})

    def _method_not_allowed(self):
        # Drain any request body so a kept-alive connection stays in sync.
        try:
            if self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding"):
                self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
        self._respond(405, {"ok": False, "error": "method not allowed"},
                      extra_headers=[("Allow", "POST")])

    def __getattr__(self, name):
        # Any do_<METHOD> other than POST -> 405.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)


class TLSThreadingHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ssl_ctx, state):
        self.ssl_ctx = ssl_ctx
        self.state = state
        super().__init__(addr, handler)

    def server_bind(self):
        # Skip HTTPServer.server_bind's getfqdn() (may do a DNS lookup).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = "localhost"
        self.server_port = port

    def finish_request(self, request, client_address):
        # Runs in the per-connection thread: do the TLS handshake here so a
        # slow/broken client cannot block the accept loop.
        request.settimeout(30)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


def start_https(args, recorder, cert, key):
    state = WebhookState(
        recorder,
        decode_webhook_secret(args.webhook_secret),
        args.webhook_fail_first,
        args.webhook_delay_ms,
    )
    httpd = TLSThreadingHTTPServer(
        ("127.0.0.1", args.https_port), WebhookHandler,
        server_ssl_context(cert, key), state)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                         name="https", daemon=True)
    t.start()
    return httpd, t, httpd.server_address[1]


# --------------------------------------------------------------------------
# Main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Local SMTP + HTTPS webhook sink for tests.")
    p.add_argument("--dir", required=True,
                   help="working directory (cert.pem/key.pem are created/reused here)")
    p.add_argument("--out", required=True,
                   help="file to append one JSON object per received message")
    p.add_argument("--smtp-user", default=None, help="accepted SMTP AUTH login")
    p.add_argument("--smtp-password", default=None, help="accepted SMTP AUTH password")
    p.add_argument("--webhook-secret", default=None,
                   help='Standard Webhooks secret "whsec_<base64>"')
    p.add_argument("--webhook-fail-first", type=int, default=0,
                   help="answer the first N webhook POSTs with 503")
    p.add_argument("--webhook-delay-ms", type=int, default=0,
                   help="sleep this many ms before answering each webhook POST")
    p.add_argument("--smtp-port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--https-port", type=int, default=0, help="0 = pick a free port")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # aiosmtpd logs a deprecation warning on every successful AUTH; keep
    # stderr for real errors only.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    controller = None
    try:
        cert, key = ensure_certificate(args.dir)
        recorder = Recorder(args.out)
        controller, smtp_port = start_smtp(args, recorder, cert, key)
        httpd, https_thread, https_port = start_https(args, recorder, cert, key)
    except Exception as e:  # startup failure: no ready line, non-zero exit
        if isinstance(e, subprocess.CalledProcessError):
            sys.stderr.write("sink: openssl failed: %s\n%s\n" % (
                e, (e.stderr or b"").decode(errors="replace")))
        else:
            sys.stderr.write("sink: startup failed: %r\n" % (e,))
        if controller is not None:
            try:
                controller.stop()
            except Exception:
                pass
        return 1

    def watch_stdin():
        try:
            while True:
                if not os.read(0, 4096):
                    break
        except OSError:
            pass
        stop.set()

    if sys.stdin is not None:
        threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()

    sys.stdout.write(json.dumps({"smtp_port": smtp_port, "https_port": https_port,
                                 "ca_file": cert}) + "\n")
    sys.stdout.flush()

    while not stop.wait(0.5):
        pass

    # Safety net: never hang on shutdown.
    watchdog = threading.Timer(10.0, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    try:
        httpd.shutdown()
        httpd.server_close()
    except Exception:
        pass
    try:
        controller.stop()
    except Exception:
        pass
    try:
        recorder.close()
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
