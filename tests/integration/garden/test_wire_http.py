"""Exact bytes on the wire from the real daemon, driven with raw sockets like the Go client/gaol."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import tarfile

import pytest

from garden.api import server
from tests.garden_server import tar_of

GO_HEADERS = b"Host: api\r\nUser-Agent: Go-http-client/1.1\r\n"
MINIMAL_SPEC = (b'{"image":{},"limits":{"bandwidth_limits":{},"cpu_limits":{},"disk_limits":{},'
                b'"memory_limits":{},"pid_limits":{}}}\n')


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    return sock


def request(method: str, target: str, body: bytes | None = None, close: bool = True,
            content_type: bytes = b"application/json") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\n".encode() + GO_HEADERS
    if body is not None:
        head += b"Content-Length: %d\r\nContent-Type: %s\r\n" % (len(body), content_type)
    if close:
        head += b"Accept-Encoding: gzip\r\nConnection: close\r\n"
    return head + b"\r\n" + (body or b"")


Response = tuple[bytes, dict[str, str], bytes]


def call(path: str, method: str, target: str, body: bytes | None = None) -> Response:
    """One Go-style ordinary call; returns status line, headers (lower-case names) and body."""
    with connect(path) as sock:
        sock.sendall(request(method, target, body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return split_response(data)


def split_response(data: bytes) -> Response:
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.decode().lower(): v.decode() for k, _, v in (line.partition(b": ") for line in lines)}
    return status, headers, body


def read_head(sock: socket.socket) -> Response:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-header: {data!r}"
        data += chunk
    return split_response(data)


def read_line(sock: socket.socket, pending: bytes) -> tuple[bytes, bytes]:
    while b"\n" not in pending:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a line: {pending!r}"
        pending += chunk
    line, _, rest = pending.partition(b"\n")
    return line + b"\n", rest


def read_to_eof(sock: socket.socket, pending: bytes = b"") -> bytes:
    while chunk := sock.recv(65536):
        pending += chunk
    return pending


def envelope(type_: str, message: str, handle: str = "", process_id: str = "") -> bytes:
    return json.dumps({"Type": type_, "Message": message, "Handle": handle, "ProcessID": process_id,
                       "Binary": ""}, separators=(",", ":")).encode() + b"\n"


@pytest.fixture
def handle(make):
    return make(user=False)


def test_ping_bytes(garden_server):
    status, headers, body = call(garden_server.socket_path, "GET", "/ping")
    assert status == b"HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == "3" and headers["connection"] == "close"
    assert body == b"{}\n"


def test_unknown_route_is_gos_404_page(garden_server):
    status, headers, body = call(garden_server.socket_path, "GET", "/nope")
    assert status == b"HTTP/1.1 404 Not Found"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    assert body == b"404 page not found\n"
    # the Go client does not escape '/' in property keys: such a key is an unknown route
    _, _, body = call(garden_server.socket_path, "PUT", "/containers/c1/properties/k/with%20space", b"{}")
    assert body == b"404 page not found\n"


def test_wrong_method_is_405_with_allow(garden_server):
    status, headers, body = call(garden_server.socket_path, "PATCH", "/containers", b"")
    assert status == b"HTTP/1.1 405 Method Not Allowed"
    assert headers["allow"] == "GET, POST"
    assert body == b"Method Not Allowed\n"


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "invalid character 'n' looking for beginning of object key string"),
    (b"", "EOF"),
    (b'{"handle":"x","grace_time":"soon"}',
     "json: cannot unmarshal string into Go struct field ContainerSpec.grace_time of type time.Duration"),
    (b'{"limits":{"pid_limits":{"max":-3}}}',
     "json: cannot unmarshal number -3 into Go struct field PidLimits.limits.pid_limits.max of type uint64"),
])
def test_bad_create_bodies_get_plain_500_envelopes_and_create_nothing(garden_server, body, message):
    before = garden_server.client().list({"garden.state": "all"})
    status, headers, got = call(garden_server.socket_path, "POST", "/containers", body)
    assert status == b"HTTP/1.1 500 Internal Server Error"
    assert headers["content-type"] == "application/json"
    assert got == envelope("", message)
    assert garden_server.client().list({"garden.state": "all"}) == before


def test_huge_body_is_refused_and_server_keeps_serving(garden_server):
    body = b'{"handle":"' + b"x" * (2 << 20) + b'"}'
    with connect(garden_server.socket_path) as sock:
        sock.sendall(request("POST", "/containers", body))
        status, _, got = split_response(read_to_eof(sock))
    assert status == b"HTTP/1.1 500 Internal Server Error"
    assert got == envelope("", "http: request body too large")
    assert call(garden_server.socket_path, "GET", "/ping")[2] == b"{}\n"


def test_go_client_create_minimal_and_duplicate(garden_server):
    client = garden_server.client()
    spec = MINIMAL_SPEC.replace(b"{", b'{"handle":"wire-dup",', 1)
    try:
        status, _, body = call(garden_server.socket_path, "POST", "/containers", spec)
        assert (status, body) == (b"HTTP/1.1 200 OK", b'{"Handle":"wire-dup"}\n')
        status, _, body = call(garden_server.socket_path, "POST", "/containers", spec)
        assert status == b"HTTP/1.1 500 Internal Server Error"
        assert body == envelope("", "Handle 'wire-dup' already in use")
        _, _, body = call(garden_server.socket_path, "POST", "/containers", MINIMAL_SPEC)
        generated = json.loads(body)["Handle"]
        assert len(generated) == 36
        client.destroy(generated)
    finally:
        client.destroy("wire-dup")


def test_not_found_envelopes(garden_server, handle):
    path = garden_server.socket_path
    status, _, body = call(path, "GET", "/containers/zzz/info")
    assert status == b"HTTP/1.1 404 Not Found"
    assert body == envelope("ContainerNotFoundError", "unknown handle: zzz", handle="zzz")
    status, _, body = call(path, "DELETE", "/containers/potato")
    assert (status, body) == (b"HTTP/1.1 404 Not Found",
                              envelope("ContainerNotFoundError", "unknown handle: potato", handle="potato"))
    with connect(path) as sock:  # hijack-style request (no Connection: close)
        sock.sendall(request("GET", f"/containers/{handle}/processes/idontexist", close=False))
        status, headers, body = read_head(sock)
    assert status == b"HTTP/1.1 404 Not Found" and "connection" not in headers
    assert body == envelope("ProcessNotFoundError", "unknown process: idontexist", process_id="idontexist")


def test_stop_without_body_is_eof(garden_server, handle):
    status, _, body = call(garden_server.socket_path, "PUT", f"/containers/{handle}/stop", b"")
    assert (status, body) == (b"HTTP/1.1 500 Internal Server Error", envelope("", "EOF"))


def test_bulk_info(garden_server, handle):
    path = garden_server.socket_path
    assert call(path, "GET", "/containers/bulk_info")[2] == b"{}\n"
    assert call(path, "GET", "/containers/bulk_info?handles=")[2] == b"{}\n"
    body = json.loads(call(path, "GET", f"/containers/bulk_info?handles={handle}%2Cmissing")[2])
    assert body[handle]["Err"] is None and body[handle]["Info"]["State"] == "active"
    assert body["missing"]["Err"] == json.loads(envelope("", "unknown handle: missing"))
    assert body["missing"]["Info"]["Events"] is None
    metrics = json.loads(call(path, "GET", f"/containers/bulk_metrics?handles={handle}")[2])
    assert set(metrics[handle]) == {"Metrics", "Err"}
    assert "TotalUsageTowardLimit" in metrics[handle]["Metrics"]["MemoryStat"]


def test_property_routes(garden_server, handle):
    path = garden_server.socket_path
    base = f"/containers/{handle}/properties"
    assert call(path, "PUT", f"{base}/colour", b'{"value":"v\\"1"}\n')[2] == b"{}\n"
    assert call(path, "GET", f"{base}/colour")[2] == b'{"value":"v\\"1"}\n'
    assert json.loads(call(path, "GET", base)[2])["colour"] == 'v"1'
    assert call(path, "DELETE", f"{base}/colour")[2] == b"{}\n"
    status, _, body = call(path, "GET", f"{base}/colour")
    assert (status, body) == (b"HTTP/1.1 500 Internal Server Error",
                              envelope("", "property does not exist: colour"))
    assert call(path, "PUT", f"/containers/{handle}/grace_time", b"5000000000\n")[2] == b"{}\n"


def test_run_is_hijacked_with_ndjson_control_and_raw_streams(garden_server, handle):
    path = garden_server.socket_path
    spec = (b'{"id":"wire-p1","path":"sh","args":["-c","read x; echo \\"got $x\\"; echo oops >&2; exit 42"],'
            b'"rlimits":{},"image":{}}\n')
    with connect(path) as control:
        control.sendall(request("POST", f"/containers/{handle}/processes", spec, close=False))
        status, headers, pending = read_head(control)
        assert status == b"HTTP/1.1 201 Created"
        assert headers["transfer-encoding"] == "chunked" and headers["content-type"] == "application/json"
        assert "connection" not in headers and "content-length" not in headers
        first, pending = read_line(control, pending)
        stream_id = json.loads(first)["stream_id"]
        assert first == b'{"process_id":"wire-p1","stream_id":"%s"}\n' % stream_id.encode()

        streams = {}
        for name in ("stdout", "stderr"):
            sock = connect(path)
            sock.sendall(request("GET", f"/containers/{handle}/processes/wire-p1/attaches/{stream_id}/{name}",
                                 close=False))
            status, headers, rest = read_head(sock)
            assert status == b"HTTP/1.1 200 OK" and headers["transfer-encoding"] == "chunked"
            assert "connection" not in headers
            streams[name] = (sock, rest)

        control.sendall(b'{"process_id":"wire-p1","source":0,"data":"caf\xc3\xa9\\n"}\n'
                        b'{"process_id":"wire-p1","source":0}\n')
        assert read_to_eof(control, pending) == b'{"process_id":"wire-p1","exit_status":42}\n'
    outputs = {}
    for name, (sock, rest) in streams.items():
        with sock:
            outputs[name] = read_to_eof(sock, rest)  # closed by the server after exit + drain
    assert outputs == {"stdout": "got café\n".encode(), "stderr": b"oops\n"}


def test_attach_after_exit_and_unknown_stream(garden_server, handle):
    path = garden_server.socket_path
    spec = b'{"id":"wire-p2","path":"sh","args":["-c","exit 7"],"rlimits":{},"image":{}}\n'
    with connect(path) as control:  # gaol `run` without -a: read the first line, go away
        control.sendall(request("POST", f"/containers/{handle}/processes", spec, close=False))
        read_line(control, read_head(control)[2])
    with connect(path) as control:
        control.sendall(request("GET", f"/containers/{handle}/processes/wire-p2", close=False))
        status, headers, pending = read_head(control)
        assert status == b"HTTP/1.1 200 OK" and headers["transfer-encoding"] == "chunked"
        first, pending = read_line(control, pending)
        assert json.loads(first)["process_id"] == "wire-p2"
        assert read_to_eof(control, pending) == b'{"process_id":"wire-p2","exit_status":7}\n'
    status, headers, body = call(path, "GET", f"/containers/{handle}/processes/wire-p2/attaches/999/stdout")
    assert (status, headers["transfer-encoding"], body) == (b"HTTP/1.1 200 OK", "chunked", b"")


def test_stream_in_accepts_chunked_bodies(garden_server, handle):
    tar_bytes = tar_of({"chunked.txt": b"hello"})
    pieces = (tar_bytes[:1000], tar_bytes[1000:])
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in pieces) + b"0\r\n\r\n"
    head = (f"PUT /containers/{handle}/files?destination=%2Ftmp&user=root HTTP/1.1\r\n".encode() + GO_HEADERS
            + b"Transfer-Encoding: chunked\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n")
    with connect(garden_server.socket_path) as sock:
        sock.sendall(head + body)
        status, _, got = split_response(read_to_eof(sock))
    assert (status, got) == (b"HTTP/1.1 200 OK", b"{}\n")
    out = b"".join(garden_server.client().stream_out(handle, "/tmp/chunked.txt"))
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert tar.extractfile("chunked.txt").read() == b"hello"


def test_listeners_and_debug_vars(tmp_path):
    """start(): a stale socket file is replaced, the socket is 0777, TCP works; /debug/vars has Alloc."""
    socket_path = tmp_path / "debug.sock"
    socket_path.write_text("stale")

    async def get(open_connection) -> bytes:
        reader, writer = await open_connection
        writer.write(b"GET /debug/vars HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    async def scenario() -> list[bytes]:
        runner = await server.start(server.build_debug_app(), bind_socket=str(socket_path),
                                    bind_ip="127.0.0.1", bind_port=0)
        try:
            assert socket_path.stat().st_mode & 0o777 == 0o777
            host, port = next(a for a in runner.addresses if isinstance(a, tuple))[:2]
            return [await get(asyncio.open_unix_connection(str(socket_path))),
                    await get(asyncio.open_connection(host, port))]
        finally:
            await runner.cleanup()

    for data in asyncio.run(scenario()):
        status, _, body = split_response(data)
        assert status == b"HTTP/1.1 200 OK"
        assert json.loads(body)["memstats"]["Alloc"] > 0
