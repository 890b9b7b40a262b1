"""The HTTP/1.1 server under the local endpoint: each request is read whole, under deadlines and
a memory budget, before a worker thread sees it.

One thread reads every connection (a selector), so a client still sending its request costs a
buffer, not a thread: slow senders cannot hold the workers, and when the connections run out
the one that has waited longest for its request is closed to let a new client in. Headers must
arrive within a deadline from their first byte and the body within one from the end of the
headers. Framing is strict (RFC 9112 §6): one ASCII Content-Length, or ``chunked`` alone, never
both; anything ambiguous is answered 400 and the connection closed, so no body can be read as
a next request. Bodies held at once are bounded in bytes; past the bound a request is answered
503 with Retry-After before its body is read. ``Expect: 100-continue`` gets its 100 only for a
request that passed all of that.

Workers compute answers and never wait on a client: what the socket does not take at once is
sent by the reading thread as the client reads, within a deadline, and answers left unread are
bounded in bytes (past it the client that has waited longest to read is closed).

The application is a function from a :class:`Request` to a :class:`Response`; the refusals
this layer makes go through the application's ``refuse`` so each path answers in its own
format (the SageMaker Runtime API's errors on its paths).
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

from training import limits
from training.errors import EndpointStartError


@dataclass(frozen=True)
class ServerLimits:
    """The bounds one server runs under; defaults are ``training.limits``' (tests shorten the
    deadlines)."""

    max_body: int = limits.INVOKE_MAX_BODY  # SageMaker's own
    max_header_bytes: int = limits.SERVER_MAX_HEADER_BYTES
    header_deadline_s: float = limits.SERVER_HEADER_DEADLINE_S
    body_deadline_s: float = limits.SERVER_BODY_DEADLINE_S
    idle_timeout_s: float = limits.SERVER_IDLE_TIMEOUT_S
    send_deadline_s: float = limits.SERVER_SEND_DEADLINE_S
    max_connections: int = limits.SERVER_MAX_CONNECTIONS
    listen_backlog: int = limits.SERVER_LISTEN_BACKLOG
    workers: int = limits.SERVER_WORKERS
    max_bytes_in_flight: int = limits.SERVER_MAX_BYTES_IN_FLIGHT
    retry_after_s: int = limits.SERVER_RETRY_AFTER_S
    max_drain_bytes: int = limits.SERVER_MAX_DRAIN_BYTES
    max_unread_bytes: int = limits.SERVER_MAX_UNREAD_BYTES
    max_answer_bytes: int = limits.SERVER_MAX_ANSWER_BYTES  # read by the app (server.py)
    drain_s: float = limits.SERVER_DRAIN_S


class Headers:
    """A request's header fields, names case-insensitive (ASCII), values as sent (Latin-1)."""

    def __init__(self, fields: list[tuple[str, str]]):
        self._fields = tuple(fields)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self._fields if n == name]

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.get_all(name)
        return found[0] if found else default


@dataclass(frozen=True)
class Request:
    """A whole request; ``framed``: it said where its body ends (Content-Length or chunked)."""

    method: str
    path: str
    headers: Headers
    body: bytes = b""
    framed: bool = False


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False


class RefusalError(Exception):
    """A request this layer answers itself (status and a message naming the problem), then
    closes the connection: after a refusal where the next request begins is not trusted."""

    def __init__(self, status: int, message: str, headers=()):
        super().__init__(message)
        self.status, self.headers = status, tuple(headers)


Application = Callable[[Request], Response]
# (path, status, message, extra headers) -> the answer for a refusal on that path
Refuse = Callable[[str, int, str, tuple], Response]

# RFC 9110 §5.6.2 token (a method or a field name); field values: visible ASCII, Latin-1
# octets, spaces and tabs, never a control character (RFC 9110 §5.5).
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([\x20-\x7e\x80-\xff\t]*?)[ \t]*")
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: '²'.isdigit() is True, int('²') fails
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[\x20-\x7e\x80-\xff\t]*)?")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")


def _say(line: str) -> None:
    """One line on stderr; a closed stderr never stops the server."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def ascii_lower(text: str) -> str:
    """Lower case for A-Z only: header tokens compare in ASCII, not by Unicode rules."""
    return text.translate(_LOWER)


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _tokens(values: list[str]) -> list[str]:
    return [ascii_lower(t.strip(" \t")) for v in values for t in v.split(",")]


class _Chunked:
    """A chunked body (RFC 9112 §7.1), decoded as it arrives from the connection's buffer."""

    def __init__(self, max_body: int, max_trailer: int):
        self.body = bytearray()
        self._max_body, self._max_trailer = max_body, max_trailer
        self._state, self._left, self._trailer = "size", 0, 0

    def _line(self, buf: bytearray) -> bytes | None:
        end = buf.find(b"\n", 0, limits.SERVER_MAX_CHUNK_LINE + 1)
        if end < 0:  # the limit holds whether or not the line's end came in the same read
            if len(buf) > limits.SERVER_MAX_CHUNK_LINE:
                raise RefusalError(
                    400, "a chunk-size or trailer line is too long: malformed chunks"
                )
            return None
        line = bytes(buf[:end]).removesuffix(b"\r")
        del buf[: end + 1]
        return line

    def feed(self, buf: bytearray) -> bool:
        """Consume what ``buf`` holds; True once the last chunk and trailers are in."""
        while True:
            if self._state == "size":
                line = self._line(buf)
                if line is None:
                    return False
                size = _CHUNK_SIZE.fullmatch(line)
                if size is None:
                    shown = line[:40].decode("latin-1")
                    raise RefusalError(400, f"chunk size '{shown}' is not a hexadecimal byte count")
                n = int(size.group(1), 16)
                if len(self.body) + n > self._max_body:
                    raise RefusalError(
                        413, f"chunked body over the {self._max_body} byte limit: split the request"
                    )
                self._state, self._left = ("trailer", 0) if n == 0 else ("data", n)
            elif self._state == "data":
                take = min(self._left, len(buf))
                self.body += buf[:take]
                del buf[:take]
                self._left -= take
                if self._left:
                    return False
                self._state = "end"
            elif self._state == "end":
                if len(buf) < 2 and buf != b"\n":
                    return False
                if buf.startswith(b"\r\n"):
                    del buf[:2]
                elif buf.startswith(b"\n"):
                    del buf[:1]
                else:
                    raise RefusalError(400, "chunk data runs past its chunk size: malformed chunks")
                self._state = "size"
            else:  # trailer fields: read and ignored, up to an empty line
                line = self._line(buf)
                if line is None:
                    return False
                self._trailer += len(line) + 2
                if self._trailer > self._max_trailer:
                    raise RefusalError(431, "chunked trailers are too large")
                if not line:
                    return True


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    address: tuple
    since: float  # when the current phase began (the oldest waiting one is evicted first)
    deadline: float
    phase: str = "idle"  # idle, head, body, busy (a worker has it), send, drain
    buf: bytearray = field(default_factory=bytearray)
    scanned: int = 0  # how far the end of the headers was looked for
    started: float = 0.0
    method: str = "-"
    path: str = "-"
    headers: Headers | None = None
    keep_alive: bool = True
    length: int | None = None
    chunked: _Chunked | None = None
    body: bytearray = field(default_factory=bytearray)
    reserved: int = 0
    drained: int = 0
    out: memoryview | None = None  # the part of an answer the client has not read yet

    @property
    def waiting(self) -> bool:
        """Waiting for (part of) a request, or draining one: what may be evicted."""
        return self.phase not in ("busy", "send")


class HTTPServer:
    """Serves ``app`` on ``address`` until :meth:`shutdown`; ``request_log`` is called with
    (method, path, status, bytes out, bytes in, milliseconds) for every answer."""

    def __init__(
        self,
        address: tuple[str, int],
        app: Application,
        refuse: Refuse,
        settings: ServerLimits | None = None,
        request_log: Callable | None = None,
    ):
        self.limits = settings or ServerLimits()
        self._app, self._refuse, self._request_log = app, refuse, request_log
        self._listener = socket.create_server(address, backlog=self.limits.listen_backlog)
        self._listener.setblocking(False)
        self.server_address = self._listener.getsockname()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._connections: set[_Connection] = set()
        self._returned: deque = deque()  # (connection, keep alive) back from the workers
        self._work: deque = deque()
        self._work_ready = threading.Condition()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._listening = False
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._lifecycle = threading.Lock()  # starting, shutdown and close, one at a time
        self._closed = False
        # lowered to what the open-file limit allows, the first time accept() meets it
        self._max_connections = self.limits.max_connections
        self._workers: list[threading.Thread] = []
        # set once serve_forever's workers run, or once they could not (start_error says why)
        self.started = threading.Event()
        self.start_error: EndpointStartError | None = None

    # ------------------------------------------------------------------ lifecycle

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown`; at once return if it (or :meth:`server_close`) came
        first, as when a ``with`` block around a serving thread ends before the thread began
        (it raised on the closed selector, a traceback on stderr)."""
        with self._lifecycle:
            if self._stop.is_set() or self._closed:
                self._stop.clear()
                self.started.set()
                return
            self._stopped.clear()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._listen(True)
        try:
            self._start_workers()
            while not self._stop.is_set():
                now = time.monotonic()
                waits = [c.deadline - now for c in self._connections if c.phase != "busy"]
                timeout = max(0.0, min([0.5, *waits]))
                for key, _ in self._selector.select(timeout):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._take_returned()
                    elif key.data.phase == "send":
                        self._guarded(self._writable, key.data)
                    else:
                        self._guarded(self._readable, key.data)
                self._expire(time.monotonic())
        finally:
            with self._work_ready:
                self._work.extend([None] * len(self._workers))
                self._work_ready.notify_all()
            # A worker never waits on a client (the reading thread sends what does not fit),
            # so each finishes the answer it is computing and stops: none outlives shutdown.
            for worker in self._workers:
                worker.join()
            self._workers.clear()
            self._returned.clear()
            for conn in list(self._connections):
                if conn.phase == "busy":
                    conn.phase = "closing"  # not registered: nothing to unregister
                self._close(conn)
            self._listen(False)
            self._selector.unregister(self._wake_r)
            with self._lifecycle:
                self._stop.clear()
                self._stopped.set()

    def _start_workers(self) -> None:
        """The worker threads, before any request is accepted: a process at its thread or
        memory limit cannot start them, and would otherwise accept requests nobody answers
        (a client waited for its timeout). Raises EndpointStartError saying so."""
        try:
            for i in range(self.limits.workers):
                worker = threading.Thread(target=self._worker, name=f"endpoint-{i}", daemon=True)
                worker.start()
                self._workers.append(worker)
        except RuntimeError as err:  # "can't start new thread"
            self.start_error = EndpointStartError(
                f"the local endpoint could not start its {self.limits.workers} worker threads "
                f"({err}; {len(self._workers)} started): the process is at its thread or "
                "memory limit (ulimit -u, ulimit -v); raise it, or run with fewer processes"
            )
            raise self.start_error from None
        finally:
            self.started.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it has returned (or, called before it,
        make it return at once)."""
        with self._lifecycle:
            self._stop.set()
            serving = not self._stopped.is_set()
        self._wake()
        if serving:
            self._stopped.wait()

    def server_close(self) -> None:
        with self._lifecycle:
            self._closed = True
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    def _guarded(self, step: Callable, conn: _Connection) -> None:
        """A bug met while reading one connection closes that one (a line on stderr), never
        the loop that reads all the others."""
        try:
            step(conn)
        except Exception as err:
            _say(f"endpoint: error reading a request: {err!r}")
            self._close(conn)

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        elif not on and self._listening:
            self._selector.unregister(self._listener)
        self._listening = on

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already woken (buffer full), or closed
            self._wake_w.send(b"\0")

    # ------------------------------------------------------------------ connections

    def _accept(self) -> None:
        evicted = False
        while True:
            full = len(self._connections) >= self._max_connections
            if full and not any(c.waiting for c in self._connections):
                self._listen(False)  # every connection is being answered; the backlog waits
                return
            if full and evicted:
                # Read what the open connections sent before evicting another: accepting a
                # backlog of new connections at once would evict a client whose request had
                # already arrived, unread (a flood of idle connections reset every client).
                return
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # (aborted: the client reset before it was accepted)
            except OSError as err:
                if err.errno not in (errno.EMFILE, errno.ENFILE):  # that one, not the server
                    _say(f"endpoint: cannot accept a connection: {err}")
                    return
                # Out of file descriptors below max_connections: from here on serve one fewer
                # than now (a descriptor spare for the accept before an eviction), evicting
                # like at max_connections (said once: a flood met it at every accept, a line
                # each on stderr).
                self._max_connections = max(1, len(self._connections) - 1)
                _say(
                    f"endpoint: {err.strerror} at {len(self._connections)} connections (the "
                    f"open-file limit, `ulimit -n`, is under max_connections "
                    f"{self.limits.max_connections}): serving at most {self._max_connections}"
                )
                if not self._evict():
                    self._listen(False)
                return
            if full:
                evicted = self._evict()  # the one that has waited longest for its request
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # reset before it was accepted
                sock.close()
                continue
            now = time.monotonic()
            conn = _Connection(sock, address, now, now + self.limits.idle_timeout_s)
            self._connections.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _evict(self) -> bool:
        """Close the connection that has waited longest for its request; False if every one
        is being answered."""
        waiting = [c for c in self._connections if c.waiting]
        if not waiting:
            return False
        self._close(min(waiting, key=lambda c: c.since))
        return True

    def _close(self, conn: _Connection) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        self._release(conn)
        if conn.phase not in ("busy", "closing"):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.sock.close()
        if not self._listening and not self._stop.is_set():
            self._listen(True)

    def _release(self, conn: _Connection) -> None:
        with self._lock:
            self._in_flight -= conn.reserved
        conn.reserved = 0

    def _reserve(self, conn: _Connection, total: int) -> None:
        """Hold ``total`` bytes for this request's body, or refuse it with 503."""
        grow = total - conn.reserved
        with self._lock:
            if grow > 0 and self._in_flight + grow > self.limits.max_bytes_in_flight:
                busy = self._in_flight
            else:
                self._in_flight += grow
                conn.reserved = total
                return
        after = self.limits.retry_after_s
        raise RefusalError(
            503,
            f"the endpoint is busy ({busy} bytes of requests in flight, at most "
            f"{self.limits.max_bytes_in_flight}): retry after {after} s",
            headers=[("Retry-After", str(after))],
        )

    def _expire(self, now: float) -> None:
        for conn in [c for c in self._connections if c.phase != "busy" and c.deadline <= now]:
            self._guarded(self._expired, conn)

    def _expired(self, conn: _Connection) -> None:
        limits_ = self.limits
        if conn.phase == "head":
            message = (
                f"headers not received within {limits_.header_deadline_s} s: send them at once"
            )
            self._answer_refusal(conn, RefusalError(408, message))
        elif conn.phase == "body":
            message = f"body not received within {limits_.body_deadline_s} s: send it at once"
            self._answer_refusal(conn, RefusalError(408, message))
        else:  # idle keep-alive, the drain after a refusal, or an unread answer is over
            self._close(conn)

    def _writable(self, conn: _Connection) -> None:
        """Send more of an answer the client had not read; once all is sent, wait for its
        next request (or close)."""
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # hung up or reset
            self._close(conn)
            return
        conn.out = conn.out[sent:]
        if conn.out:
            return
        conn.out = None
        if not conn.keep_alive:
            self._close(conn)
            return
        self._selector.unregister(conn.sock)
        self._wait_next(conn)

    def _readable(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client hung up
            self._close(conn)
            return
        if conn.phase == "drain":
            conn.drained += len(data)
            if conn.drained > self.limits.max_drain_bytes:
                self._close(conn)
            return
        conn.buf += data
        self._advance(conn)

    def _advance(self, conn: _Connection) -> None:
        try:
            if conn.phase == "idle":
                while conn.buf[:1] in (b"\r", b"\n"):  # RFC 9112 §2.2: empty lines before it
                    del conn.buf[:1]
                if not conn.buf:
                    return
                now = time.monotonic()
                conn.phase, conn.since, conn.started = "head", now, now
                conn.method, conn.path = "-", "-"  # not the previous request's (a HEAD)
                conn.deadline = now + self.limits.header_deadline_s
                conn.scanned = 0
            if conn.phase == "head" and not self._head(conn):
                return
            if conn.phase == "body" and self._body(conn):
                self._dispatch(conn)
        except RefusalError as refusal:
            self._answer_refusal(conn, refusal)

    def _head(self, conn: _Connection) -> bool:
        """Parse the request line and headers once they are all in; decide the framing."""
        end = _END_OF_HEAD.search(conn.buf, max(0, conn.scanned - 3))
        limit = self.limits.max_header_bytes
        if end is None:
            conn.scanned = len(conn.buf)
            if len(conn.buf) > limit:
                raise RefusalError(431, f"request line and headers are over {limit} bytes")
            return False
        if end.start() > limit:
            raise RefusalError(431, f"request line and headers are over {limit} bytes")
        lines = bytes(conn.buf[: end.start()]).split(b"\n")
        del conn.buf[: end.end()]
        lines = [line.removesuffix(b"\r") for line in lines]
        first = _REQUEST_LINE.fullmatch(lines[0])
        if first is None:
            conn.path = lines[0][:80].decode("latin-1")
            raise RefusalError(
                400, f"malformed request line '{conn.path}': send METHOD /path HTTP/1.1"
            )
        conn.method = first.group(1).decode()
        conn.path = first.group(2).decode()
        if first.group(3) != b"1":
            raise RefusalError(505, "HTTP/1.1 only")
        fields = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                raise RefusalError(
                    400, "a folded header line (RFC 9112 §5.2): send each on one line"
                )
            match = _FIELD.fullmatch(line)
            if match is None:
                shown = line[:60].decode("latin-1")
                raise RefusalError(400, f"malformed header line '{shown}': send Name: value")
            fields.append((match.group(1).decode().lower(), match.group(2).decode("latin-1")))
        conn.headers = headers = Headers(fields)
        http10 = first.group(4) == b"0"
        connection = _tokens(headers.get_all("connection"))
        conn.keep_alive = "close" not in connection and (not http10 or "keep-alive" in connection)
        self._framing(conn, headers, http10)
        expect = headers.get_all("expect")
        if expect:
            if _tokens(expect) != ["100-continue"]:
                raise RefusalError(
                    417, f"Expect '{expect[0][:40]}' is not supported: only 100-continue"
                )
            if not http10 and (conn.chunked is not None or conn.length):
                self._send_now(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
        now = time.monotonic()
        conn.phase, conn.since, conn.deadline = "body", now, now + self.limits.body_deadline_s
        conn.body = bytearray()
        return True

    def _framing(self, conn: _Connection, headers: Headers, http10: bool) -> None:
        """Where the body ends (RFC 9112 §6.3); every ambiguity is a 400 that closes."""
        lengths = headers.get_all("content-length")
        codings = headers.get_all("transfer-encoding")
        conn.length, conn.chunked = None, None
        if codings:
            if lengths:
                raise RefusalError(
                    400, "both Content-Length and Transfer-Encoding: send one of them"
                )
            if http10:
                raise RefusalError(
                    400, "Transfer-Encoding in an HTTP/1.0 request: send Content-Length"
                )
            names = _tokens(codings)
            if names == ["chunked"]:
                conn.chunked = _Chunked(self.limits.max_body, self.limits.max_header_bytes)
                return
            shown = ", ".join(codings)[:60]
            if names[-1] != "chunked" or names.count("chunked") > 1:
                raise RefusalError(
                    400, f"Transfer-Encoding '{shown}' is not chunked once, last: send chunked"
                )
            raise RefusalError(501, f"Transfer-Encoding '{shown}': only chunked is supported")
        if not lengths:
            return
        raw = lengths[0]
        if len(lengths) > 1 or "," in raw:
            raise RefusalError(400, "more than one Content-Length: send exactly one")
        if not _DIGITS.fullmatch(raw):
            raise RefusalError(
                400, f"Content-Length '{raw[:40]}' is not a byte count: send ASCII digits"
            )
        size = int(raw)
        if size > self.limits.max_body:
            mb = self.limits.max_body / (1024 * 1024)
            raise RefusalError(
                413, f"body of {size} bytes is over the {mb:g} MB limit: split the request"
            )
        self._reserve(conn, size)
        conn.length = size

    def _body(self, conn: _Connection) -> bool:
        """Move what arrived into the body; True when it is complete."""
        if conn.chunked is not None:
            done = conn.chunked.feed(conn.buf)
            self._reserve(conn, len(conn.chunked.body))
            if done:
                conn.body = conn.chunked.body
            return done
        need = (conn.length or 0) - len(conn.body)
        conn.body += conn.buf[:need]
        del conn.buf[:need]
        return len(conn.body) == (conn.length or 0)

    def _dispatch(self, conn: _Connection) -> None:
        framed = conn.length is not None or conn.chunked is not None
        request = Request(conn.method, conn.path, conn.headers, bytes(conn.body), framed)
        conn.body, conn.chunked = bytearray(), None
        conn.phase = "busy"
        self._selector.unregister(conn.sock)
        with self._work_ready:
            # A request without a body (the platform's /ping health check: "How Your Container
            # Should Respond to Health Check (Ping) Requests", https://docs.aws.amazon.com/
            # sagemaker/latest/dg/your-algorithms-inference-code.html) costs nothing to answer:
            # it goes before the scoring waiting for a worker, not behind all of it (under 40
            # large requests a /ping waited over 10 s).
            if request.body:
                self._work.append((conn, request))
            else:
                self._work.appendleft((conn, request))
            self._work_ready.notify()

    def _take_returned(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._returned:
            conn, keep = self._returned.popleft()
            if self._stop.is_set() or (not keep and conn.out is None):
                self._close(conn)  # still "busy": not registered, nothing to unregister
                continue
            now = time.monotonic()
            if conn.out is not None:  # the rest of the answer goes out as the client reads
                conn.phase, conn.keep_alive, conn.since = "send", keep, now
                conn.deadline = now + self.limits.send_deadline_s
                self._selector.register(conn.sock, selectors.EVENT_WRITE, conn)
                self._bound_unread(conn)
                continue
            self._wait_next(conn)

    def _bound_unread(self, newest: _Connection) -> None:
        """Past ``max_unread_bytes`` of answers waiting for their clients to read them, close
        the connection that has waited longest to read (a client reads its answer at once)."""
        sending = [c for c in self._connections if c.phase == "send" and c is not newest]
        unread = len(newest.out) + sum(len(c.out) for c in sending)
        for conn in sorted(sending, key=lambda c: c.since):
            if unread <= self.limits.max_unread_bytes:
                return
            unread -= len(conn.out)
            self._close(conn)

    def _wait_next(self, conn: _Connection) -> None:
        """Keep the connection open for its next request (which may already be here)."""
        conn.phase = "idle"
        now = time.monotonic()
        conn.since, conn.deadline = now, now + self.limits.idle_timeout_s
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        if conn.buf:  # a pipelined request already arrived
            self._guarded(self._advance, conn)

    # ------------------------------------------------------------------ answers

    def _answer_refusal(self, conn: _Connection, refusal: RefusalError) -> None:
        """Answer from the reading thread (a refusal is small), then close."""
        response = self._refuse(conn.path, refusal.status, str(refusal), refusal.headers)
        self._send_now(conn, self._serialize(response, conn.method == "HEAD", keep=False))
        self._log(conn, response.status, len(response.body), len(conn.body))
        self._release(conn)
        # Read and discard the rest of what the client sends for a while, so that it reads
        # this answer rather than a connection reset (a close with unread data sends RST).
        conn.phase, conn.buf, conn.body = "drain", bytearray(), bytearray()
        conn.since, conn.deadline = time.monotonic(), time.monotonic() + self.limits.drain_s
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)

    def _send_now(self, conn: _Connection, data: bytes) -> None:
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, OSError):
            sent = 0
        if sent < len(data):  # a client that does not read even this much is let go
            conn.keep_alive = False

    def _serialize(self, response: Response, head: bool, keep: bool) -> bytes:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            "Server: LinearLearnerLocal/1",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Type: {response.content_type}",
            *(f"{name}: {value}" for name, value in response.headers),
            f"Content-Length: {len(response.body)}",
        ]
        if not keep:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head_bytes if head else head_bytes + response.body

    def _log(self, conn: _Connection, status: int, sent: int, received: int) -> None:
        if self._request_log is not None:
            ms = (time.monotonic() - (conn.started or time.monotonic())) * 1e3
            try:
                self._request_log(conn.method, conn.path, status, sent, received, ms)
            except (OSError, ValueError):  # its stream closed (`serve 2>&1 | head`): stop
                # logging, keep serving (it killed the worker, then the reading thread)
                self._request_log = None

    def _worker(self) -> None:
        while True:
            with self._work_ready:
                while not self._work:
                    self._work_ready.wait()
                item = self._work.popleft()
            if item is None:
                return
            conn, request = item
            keep = False
            try:
                keep = self._answer(conn, request)
            except Exception as err:  # a bug past the application: this connection, not the thread
                _say(f"endpoint: error answering {request.path}: {err!r}")
            finally:
                self._release(conn)
                self._returned.append((conn, keep))
                self._wake()

    def _answer(self, conn: _Connection, request: Request) -> bool:
        """Compute one answer and send what the socket takes now, leaving the rest in
        ``conn.out`` for the reading thread: a worker never waits on a client (16 clients
        that did not read their answers held every worker for the send deadline, and /ping
        waited). True if the connection stays open."""
        try:
            response = self._app(request)
        except Exception as err:  # a bug, not the client's: one line, not a stack
            _say(f"endpoint: error answering {request.path}: {err!r}")
            response = Response(500, b"internal error\n", close=True)
        keep = conn.keep_alive and not response.close
        view = memoryview(self._serialize(response, request.method == "HEAD", keep))
        try:
            while view:
                view = view[conn.sock.send(view) :]
        except (BlockingIOError, InterruptedError):
            conn.out = view
        except OSError:  # hung up or reset
            keep = False
        self._log(conn, response.status, len(response.body), len(request.body))
        return keep
