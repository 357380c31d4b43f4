"""Protocol strictness, against the real detachd over a direct FastCGI
client: padding on any record (BEGIN_REQUEST included), requests pipelined
on one kept connection, the read deadline of a connection that says
nothing, and request paths with dot segments."""

import os
import struct
import subprocess
import time

from harness import Sandbox, binary, run, wait_for
from fcgi_client import (BEGIN_REQUEST, END_REQUEST, KEEP_CONN, PARAMS, RESPONDER, STDIN, STDOUT,
                         Connection, Response, cgi_params, encode_params, fcgi_request,
                         request_bytes)


def padded_record(kind, request_id, content=b"", padding=0):
    """A record with any padding (0-255), as the spec allows on every type."""
    header = struct.pack(">BBHHBB", 1, kind, request_id, len(content), padding, 0)
    return header + content + b"\xa5" * padding


def padded_request(params, padding, body=b"", request_id=1, keep_conn=True):
    begin = struct.pack(">HB5x", RESPONDER, KEEP_CONN if keep_conn else 0)
    out = padded_record(BEGIN_REQUEST, request_id, begin, padding)
    out += padded_record(PARAMS, request_id, encode_params(params), padding)
    out += padded_record(PARAMS, request_id, b"", padding)
    if body:
        out += padded_record(STDIN, request_id, body, padding)
    out += padded_record(STDIN, request_id, b"", padding)
    return out


def read_responses(connection, count):
    """The next count responses, as (request_id, Response), in the order
    their END_REQUEST records came."""
    partial, done = {}, []
    while len(done) < count:
        kind, request_id, content = connection.read_record()
        response = partial.setdefault(request_id, Response())
        if kind == STDOUT:
            response.stdout += content
        elif kind == END_REQUEST:
            response.ended = True
            done.append((request_id, partial.pop(request_id)))
    return done


def lines_of(path):
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def job_writing_ids(box, name="ran"):
    marker = box.path(name)
    return marker, box.script(name + ".sh", f'echo "$DETACH_JOB_ID" >> {marker}\n')


def test_padding_on_begin_request_is_served_and_keeps_the_connection():
    with Sandbox() as box:
        marker, job = job_writing_ids(box)
        daemon = box.detachd({"/job": {"command": job}}, {"workers": 2})
        connection = Connection(box.socket)
        ids = []
        # On the watcher's own path (a trigger's 200) and through fcgi_response on
        # a worker (a 404), each padding, on one kept connection.
        for padding in (1, 7, 8, 255):
            connection.send(padded_request(cgi_params("/job"), padding))
            response = connection.read_response()
            assert response.status == 200, (padding, response.stdout)
            ids.append(response.header("X-Detach-Job"))
            connection.send(padded_request(cgi_params("/nothing-here"), padding))
            assert connection.read_response().status == 404, padding
        assert len(set(ids)) == len(ids)
        wait_for(lambda: set(ids) <= lines_of(marker), 20, "every padded trigger's job to run")
        assert not daemon.events("bad_request")
        connection.close()
        assert daemon.stop() == 0


def test_a_malformed_record_is_dropped_with_a_reason_that_says_what():
    with Sandbox() as box:
        _, job = job_writing_ids(box)
        daemon = box.detachd({"/job": {"command": job}}, {"workers": 2})
        cases = {
            "a BEGIN_REQUEST body other than 8 bytes":
                padded_record(BEGIN_REQUEST, 1, struct.pack(">HB13x", RESPONDER, 0)),
            "a request opened with a record other than BEGIN_REQUEST":
                padded_record(PARAMS, 1, b"", 3),
            "ABORT_REQUEST for no open request": padded_record(2, 1),
        }
        for reason, payload in cases.items():
            connection = Connection(box.socket)
            connection.send(payload)
            assert connection.is_closed_by_peer(5), reason
            connection.close()
            daemon.wait_event("bad_request", reason=f'"{reason}"')
        assert daemon.stop() == 0


def pipelined_triggers(box, daemon, marker, count, send_paths=None):
    paths = send_paths or ["/job"] * count
    wire = b"".join(request_bytes(cgi_params(path), request_id=i + 1, keep_conn=True)
                    for i, path in enumerate(paths))
    connection = Connection(box.socket)
    connection.send(wire)                      # one send(): all of them at once
    responses = read_responses(connection, len(paths))
    assert [rid for rid, _ in responses] == list(range(1, len(paths) + 1)), "served in order"
    statuses = [response.status for _, response in responses]
    ids = [response.header("X-Detach-Job") for _, response in responses
           if response.status == 200]
    assert len(set(ids)) == len(ids), ids
    # Before anything else reaches detachd: nothing may wait for a next event.
    wait_for(lambda: set(ids) <= lines_of(marker), 20, f"the {len(ids)} pipelined jobs to run")
    # The connection is still kept: one more request on it is answered.
    assert connection.request(cgi_params("/job"), keep_conn=True).status == 200
    connection.close()
    return statuses, ids


def test_triggers_pipelined_on_a_kept_connection_are_all_served():
    with Sandbox() as box:
        marker, job = job_writing_ids(box)
        daemon = box.detachd({"/job": {"command": job}}, {"workers": 2})
        for count in (2, 3):
            statuses, ids = pipelined_triggers(box, daemon, marker, count)
            assert statuses == [200] * count and len(ids) == count
        # A request a worker answers (a 404, through fcgi_response) between two
        # triggers the watcher answers: still each in turn.
        statuses, ids = pipelined_triggers(box, daemon, marker, 3, ["/job", "/nope", "/job"])
        assert statuses == [200, 404, 200] and len(ids) == 2
        assert not daemon.events("pipelined_request_dropped")
        assert daemon.stop() == 0


def test_triggers_pipelined_with_a_spool_are_all_served():
    # With a spool every trigger is a worker's (the write may block): the
    # next request is taken up after the worker's answer.
    with Sandbox() as box:
        marker, job = job_writing_ids(box)
        daemon = box.detachd({"/job": {"command": job}},
                             {"workers": 2, "spool": box.path("spool")})
        for count in (2, 3):
            statuses, ids = pipelined_triggers(box, daemon, marker, count)
            assert statuses == [200] * count and len(ids) == count
        assert daemon.stop() == 0


def test_a_trigger_pipelined_behind_an_attached_job_is_served_after_it():
    # The attached job's output is the first answer; the trigger read along
    # with its request is not the peer leaving, and is served next.
    with Sandbox() as box:
        marker, job = job_writing_ids(box)
        attached = box.script("attached.sh", "sleep 0.3\nprintf 'Content-Type: text/plain\\r\\n"
                                             "\\r\\nattached-output'\n")
        daemon = box.detachd({"/job": {"command": job},
                              "/attached": {"command": attached, "mode": "attached"}},
                             {"workers": 2})
        connection = Connection(box.socket)
        connection.send(request_bytes(cgi_params("/attached"), request_id=1, keep_conn=True) +
                        request_bytes(cgi_params("/job"), request_id=2, keep_conn=True))
        responses = read_responses(connection, 2)
        assert [rid for rid, _ in responses] == [1, 2]
        assert responses[0][1].status == 200 and responses[0][1].body == b"attached-output"
        job_id = responses[1][1].header("X-Detach-Job")
        assert responses[1][1].status == 200 and job_id
        wait_for(lambda: job_id in lines_of(marker), 20, "the pipelined trigger's job to run")
        connection.close()
        ended = daemon.wait_event("ended", route="/attached")
        assert ended["connection_status"] == "0", ended   # not taken for an abort
        assert daemon.stop() == 0


def test_a_request_pipelined_behind_one_that_closes_is_logged():
    with Sandbox() as box:
        _, job = job_writing_ids(box)
        daemon = box.detachd({"/job": {"command": job}}, {"workers": 2})
        connection = Connection(box.socket)
        connection.send(request_bytes(cgi_params("/job"), request_id=1, keep_conn=False) +
                        request_bytes(cgi_params("/job"), request_id=2, keep_conn=True))
        assert connection.read_response(1).status == 200
        assert connection.is_closed_by_peer(5)
        connection.close()
        daemon.wait_event("pipelined_request_dropped")
        assert len(daemon.wait_events("accepted", 1)) == 1
        assert daemon.stop() == 0


def test_a_connection_that_never_sends_a_byte_is_closed_at_read_timeout():
    with Sandbox() as box:
        _, job = job_writing_ids(box)
        daemon = box.detachd({"/job": {"command": job}}, {"workers": 2, "read_timeout": 1})
        silent = Connection(box.socket)
        started = time.monotonic()
        assert silent.is_closed_by_peer(8), "a silent connection was held past read_timeout"
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"a silent connection lived {elapsed:.1f}s with read_timeout = 1"
        silent.close()
        daemon.wait_event("request_read_timeout", received=0)
        assert daemon.stop() == 0


def test_a_kept_connection_idles_past_read_timeout_but_not_mid_request():
    with Sandbox() as box:
        _, job = job_writing_ids(box)
        daemon = box.detachd({"/job": {"command": job}}, {"workers": 2, "read_timeout": 1})
        kept = Connection(box.socket)
        assert kept.request(cgi_params("/job"), keep_conn=True).status == 200
        # Between requests the idle timeout (75 s) holds, not read_timeout.
        assert not kept.is_closed_by_peer(2.5), "a kept connection was closed at read_timeout"
        assert kept.request(cgi_params("/job"), keep_conn=True).status == 200
        # Half a request on it is bounded by read_timeout again.
        kept.send(request_bytes(cgi_params("/job"), keep_conn=True)[:20])
        started = time.monotonic()
        assert kept.is_closed_by_peer(8)
        assert time.monotonic() - started < 5
        kept.close()
        daemon.wait_event("request_read_timeout")
        assert daemon.stop() == 0


def only(params, *names):
    return {name: value for name, value in params.items() if name not in names}


def test_paths_with_dot_segments_run_nothing():
    with Sandbox() as box:
        marker, job = job_writing_ids(box)
        daemon = box.detachd({"/jobs/pre/*": {"command": job}, "/jobs/exact": {"command": job}},
                             {"workers": 2, "status_path": "/detach-status"})
        hostile = ["/jobs/pre/../../etc", "/jobs/pre/..", "/jobs/pre/./x", "/jobs/exact/..",
                   "/jobs/pre/%2e%2e/%2E%2E/etc", "/jobs/pre/.%2e/etc", "/jobs/pre/..%2f..%2fetc",
                   "/jobs/pre/..\\..\\etc", "/jobs/exact/../pre/x", "/detach-status/jobs/../x"]
        for path in hostile:
            params = cgi_params(path)
            # nginx (DOCUMENT_URI), Apache (SCRIPT_NAME), a bare client
            # (REQUEST_URI only): the path routes match, wherever it is.
            for variant in (params, only(params, "DOCUMENT_URI"),
                            only(params, "DOCUMENT_URI", "SCRIPT_NAME")):
                response = Connection(box.socket).request(variant)
                assert response.status == 400, (path, variant, response.stdout)
        rejected = daemon.wait_events("rejected", 3 * len(hostile))
        assert {entry["reason"] for entry in rejected} == {
            "dot_segment", "encoded_separator", "backslash"}
        assert not daemon.events("accepted"), "a path with dot segments ran a job"
        # The same routes answer a clean path.
        job_id = fcgi_request(box.socket, "/jobs/pre/x").header("X-Detach-Job")
        assert job_id
        wait_for(lambda: job_id in lines_of(marker), 20, "the clean path's job to run")
        assert lines_of(marker) == {job_id}
        assert daemon.stop() == 0


def test_a_route_with_a_dot_segment_is_a_config_error():
    with Sandbox() as box:
        config = box.config({"/jobs/../x/*": {"command": "/bin/true"}})
        result = subprocess.run([binary("detachd"), "--config", config, "--check-config"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result
        assert f"{config}:" in result.stderr and "segment" in result.stderr, result.stderr


if __name__ == "__main__":
    run(globals())
