"""Real servers on 127.0.0.1 for the tests: LocalSite (HTTP) and LocalSMTP (aiosmtpd).

LocalSite is a stdlib ThreadingHTTPServer, not aiohttp, so an aiohttp quirk cannot hide on
both sides of the wire. It serves files from a directory, records every request, and per path
can change the status, headers or body, answer slowly, or never finish.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".pdf": "application/pdf",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    #: The request's body (a POST's), as received.
    body: bytes = b""


@dataclass
class Route:
    """How LocalSite answers one path instead of serving the file."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering.
    delay: float = 0.0
    #: Send headers and a little of the body, then stall until the client gives up.
    hang: bool = False
    #: Called per request to build (status, headers, body); overrides the fields above.
    handler: Callable[[Request], tuple[int, dict[str, str], bytes]] | None = None


class LocalSite:
    """A ThreadingHTTPServer on 127.0.0.1, port 0, in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.etags = True
        self._stop = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                site._handle(self)

            def do_HEAD(self) -> None:
                site._handle(self)

            def do_POST(self) -> None:
                site._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return self.base + "/" + path.lstrip("/")

    def route(self, path: str, **kwargs: Any) -> Route:
        route = Route(**kwargs)
        self.routes["/" + path.lstrip("/")] = route
        return route

    def hits(self, path: str) -> list[Request]:
        path = "/" + path.lstrip("/")
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> LocalSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        request = Request(h.command, h.path, dict(h.headers.items()), body)
        self.requests.append(request)
        route = self.routes.get(h.path.split("?")[0])
        if route is not None:
            self._answer_route(h, route, request)
            return
        path = (self.root / h.path.split("?")[0].lstrip("/")).resolve()
        if path.is_dir():
            path = path / "index.html"
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            self._send(h, 404, {"Content-Type": "text/plain"}, b"not found")
            return
        body = path.read_bytes()
        headers = {"Content-Type": CONTENT_TYPES.get(path.suffix, "application/octet-stream")}
        if self.etags:
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers["ETag"] = etag
            if h.headers.get("If-None-Match") == etag:
                self._send(h, 304, {"ETag": etag}, b"")
                return
        self._send(h, 200, headers, body)

    def _answer_route(self, h: BaseHTTPRequestHandler, route: Route, request: Request) -> None:
        if route.delay:
            self._stop.wait(route.delay)
        if route.handler is not None:
            status, headers, body = route.handler(request)
        else:
            status, headers, body = route.status, dict(route.headers), route.body or b""
        if route.hang:
            h.send_response(status)
            for key, value in headers.items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(body) + 1_000_000))
            h.end_headers()
            h.wfile.write(body)
            h.wfile.flush()
            self._stop.wait(60)
            return
        self._send(h, status, headers, body)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            try:
                h.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass


class LocalSMTP:
    """aiosmtpd's SMTP protocol on 127.0.0.1, port 0, on a loop in a background thread.

    aiosmtpd's Controller cannot bind port 0 (aio-libs/aiosmtpd#388), so the server is made
    with ``loop.create_server`` and the port read back from the socket.
    """

    def __init__(self, port: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        #: Per recipient, an SMTP reply to give at RCPT instead of accepting ("550 no such user").
        self.reject: dict[str, str] = {}
        self.received = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        #: 0: any free port, read back after start; a test that restarts a server gives the
        #: port the previous one had.
        self.port = port
        self.host = "127.0.0.1"

    def __enter__(self) -> LocalSMTP:
        from aiosmtpd.smtp import SMTP

        smtp = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in smtp.reject:
                    return smtp.reject[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with smtp.received:
                    smtp.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                    smtp.messages.append(message)  # type: ignore[arg-type]
                    smtp.received.notify_all()
                return "250 Message accepted"

        self.thread.start()
        handler = Handler()

        async def start() -> Any:
            return await self.loop.create_server(
                lambda: SMTP(handler, hostname="localhost"), "127.0.0.1", self.port
            )

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least ``count`` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self.received:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
                self.received.wait(left)
            return list(self.messages)

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


REPO = Path(__file__).resolve().parents[1]


class MonitorProcess:
    """`python -m monitor --config CONFIG ARGS…` (default `run`) as a real subprocess, its
    stderr read line by line in a thread so tests can wait for log events."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), *(args or ("run",))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                self.lines.put(line)

    def next_line(self, timeout: float) -> str | None:
        """The next stderr line within ``timeout`` seconds, or None."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        self.log.append(line)
        return line

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """Wait for a stderr line containing ``text``; fail with the log so far."""
        while True:
            line = self.next_line(timeout)
            if line is None:
                raise AssertionError(f"no line with {text!r} in:\n{''.join(self.log)}")
            if text in line:
                return line

    def wait_for_each(self, *texts: str, timeout: float = 30) -> dict[str, str]:
        """Wait until a line containing each of ``texts`` has come, in any order (events
        logged by concurrent jobs race); the first such line per text."""
        found: dict[str, str] = {}
        while len(found) < len(texts):
            line = self.next_line(timeout)
            if line is None:
                missing = [text for text in texts if text not in found]
                raise AssertionError(f"no line with {missing!r} in:\n{''.join(self.log)}")
            for text in texts:
                if text in line and text not in found:
                    found[text] = line
        return found

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.reader.join(timeout=5)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 40) -> int:
        """Send ``signum``, wait for the exit status, and keep the rest of the log; a process
        still running after ``timeout`` has its threads' stacks dumped (py-spy), is killed and
        fails the test with its log and those stacks."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stacks = _stacks(self.process.pid)
            self.kill()
            while not self.lines.empty():
                self.log.append(self.lines.get())
            raise AssertionError(
                f"still running {timeout:g} s after {signal.Signals(signum).name}:\n"
                f"{''.join(self.log)}\n{stacks}"
            ) from None
        self.reader.join(timeout=5)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return code


def _stacks(pid: int) -> str:
    """The Python stacks of process ``pid`` (py-spy, if installed), for a failure message."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        done = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no stacks: {exc})"
    return done.stdout + done.stderr


class LocalDNS:
    """A DNS server on 127.0.0.1 (UDP, port 0) that knows no name: it answers every query with
    NXDOMAIN, or SERVFAIL for names ending in one of ``servfail``. It records the names asked,
    so a test can check that lookups went here and nowhere else."""

    NXDOMAIN = 3
    SERVFAIL = 2

    def __init__(self, servfail: tuple[str, ...] = ()) -> None:
        import socket

        self.servfail = servfail
        self.names: list[str] = []
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = int(self.socket.getsockname()[1])
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LocalDNS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self.socket.recvfrom(512)
            except TimeoutError:
                continue
            answer = self._answer(query)
            if answer:
                self.socket.sendto(answer, client)

    def _answer(self, query: bytes) -> bytes:
        """The header with QR set and the rcode, and the question echoed (RFC 1035 §4.1)."""
        import struct

        if len(query) < 12:
            return b""
        ident, flags = struct.unpack("!HH", query[:4])
        labels, end = [], 12
        while end < len(query) and query[end]:
            labels.append(query[end + 1 : end + 1 + query[end]].decode("ascii", "replace"))
            end += 1 + query[end]
        name = ".".join(labels)
        self.names.append(name)
        rcode = self.SERVFAIL if name.endswith(self.servfail) else self.NXDOMAIN
        # QR (response), the query's opcode and RD, RA (recursion available), the rcode.
        reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode
        header = struct.pack("!HHHHHH", ident, reply_flags, 1, 0, 0, 0)
        return header + query[12 : end + 5]
