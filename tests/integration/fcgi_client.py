"""A small FastCGI client for the tests, written from the spec, independent
of libdetach's own encoder, so the two can't agree on a mistake."""

import socket
import struct
import time

VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 2, 3, 4, 5, 6, 7
RESPONDER = 1
KEEP_CONN = 1


def record(record_type, request_id, content=b"", version=VERSION):
    padding = (8 - len(content) % 8) % 8
    header = struct.pack(">BBHHBB", version, record_type, request_id, len(content), padding, 0)
    return header + content + b"\0" * padding


def _length(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def encode_params(params):
    out = b""
    for name, value in params.items():
        name, value = name.encode(), value.encode()
        out += _length(len(name)) + _length(len(value)) + name + value
    return out


def request_bytes(params, body=b"", request_id=1, keep_conn=False):
    out = record(BEGIN_REQUEST, request_id,
                 struct.pack(">HB5x", RESPONDER, KEEP_CONN if keep_conn else 0))
    encoded = encode_params(params)
    for i in range(0, len(encoded), 65535):
        out += record(PARAMS, request_id, encoded[i:i + 65535])
    out += record(PARAMS, request_id)
    for i in range(0, len(body), 65535):
        out += record(STDIN, request_id, body[i:i + 65535])
    out += record(STDIN, request_id)
    return out


def cgi_params(path, method="GET", query="", body=b"", extra=None):
    params = {
        "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": method, "SCRIPT_NAME": path, "DOCUMENT_URI": path,
        "REQUEST_URI": path + ("?" + query if query else ""), "QUERY_STRING": query,
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1",
    }
    if body:
        params["CONTENT_LENGTH"] = str(len(body))
        params["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    params.update(extra or {})
    return params


class Response:
    def __init__(self):
        self.stdout = b""
        self.stderr = b""
        self.ended = False
        self.app_status = None

    @property
    def status(self):
        head = self.head()
        for line in head.split("\r\n"):
            if line.lower().startswith("status:"):
                return int(line.split(":", 1)[1].split()[0])
        return 200

    def head(self):
        return self.stdout.split(b"\r\n\r\n", 1)[0].decode(errors="replace")

    def header(self, name):
        for line in self.head().split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def body(self):
        parts = self.stdout.split(b"\r\n\r\n", 1)
        return parts[1] if len(parts) > 1 else b""


class Connection:
    """One FastCGI connection; several requests when keep_conn is set."""

    def __init__(self, address, timeout=10.0):
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(address)
                break
            except BlockingIOError:
                # A unix socket's backlog is full (a burst of connects the
                # server has not accepted yet): a socket with a timeout
                # gets EAGAIN at once rather than waiting, so wait here.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def _read_exactly(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by detachd")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_response(self, request_id=1, until_head=False):
        response = Response()
        while True:
            version, kind, rid, length, padding, _ = struct.unpack(">BBHHBB", self._read_exactly(8))
            content = self._read_exactly(length + padding)[:length]
            if rid != request_id:
                continue
            if kind == STDOUT:
                response.stdout += content
                if until_head and b"\r\n\r\n" in response.stdout:
                    return response
            elif kind == STDERR:
                response.stderr += content
            elif kind == END_REQUEST:
                response.app_status = struct.unpack(">I", content[:4])[0]
                response.ended = True
                return response

    def read_record(self):
        """The next record as (type, request_id, content); ConnectionError at EOF."""
        version, kind, rid, length, padding, _ = struct.unpack(">BBHHBB", self._read_exactly(8))
        content = self._read_exactly(length + padding)[:length]
        return kind, rid, content

    def request(self, params, body=b"", keep_conn=False, request_id=1):
        self.send(request_bytes(params, body, request_id, keep_conn))
        return self.read_response(request_id)

    def is_closed_by_peer(self, timeout=2.0):
        """True once detachd closed its side (EOF), False if still open."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionError:
            return True

    def close(self):
        self.sock.close()


def fcgi_request(address, path, method="GET", body=b"", query="", extra=None, timeout=10.0):
    connection = Connection(address, timeout)
    try:
        return connection.request(cgi_params(path, method, query, body, extra), body)
    finally:
        connection.close()
