"""Both ends of the wire between a grading kernel and the grader.

While a class is graded, the test cells' calls to ``check_array``/``check_scalar`` are rewritten
(:mod:`autograder.check_rewriting`): in the student's sandbox they call :func:`report_check`, which
sends the values over a Unix socket to the grader's check server and raises what the grader answers;
in the instructor's reference run they call :func:`record_check`, which publishes the expected
values as display data of type :data:`REFERENCE_MIME`. Values travel as JSON descriptions plus one
blob of raw float64 data (:func:`encode_values` / :func:`decode_values`): nothing is ever pickled.

A report is framed as ``MAGIC``, the header's and the data's lengths (``<IQ``), the JSON header,
then the data (:func:`read_report` on the grader's side). Neither function is meant to be called
by a notebook's own code.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any

import numpy as np

from course.checks import (
    CheckFailed,
    Described,
    check_array,
    check_scalar,
    describe,
    is_single_number,
)

MAX_HEADER = 1 << 20
MAX_DATA = 256 << 20

SOCKET_ENV = "AUTOGRADER_CHECKS_SOCKET"
REFERENCE_MIME = "application/vnd.autograder.reference+json"
MAGIC = b"AGC1"


def encode_values(values: list[Any]) -> tuple[list[dict[str, Any]], bytes]:
    """Describe ``values`` in JSON-able form, with the float64 data of the arrays in one blob."""
    described, blobs, offset = [], [], 0
    for value in values:
        if value is None:
            described.append({"none": True})
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            described.append({"described": describe(value), "scalar": is_single_number(value)})
            continue
        data = array.tobytes()
        described.append(
            {
                "array": list(array.shape),
                "offset": offset,
                "nbytes": len(data),
                "scalar": is_single_number(value),
                "describe": describe(value),
            }
        )
        blobs.append(data)
        offset += len(data)
    return described, b"".join(blobs)


def report_check(site: str, name: str, received: Any, *rest: Any) -> None:
    """Send a check's values to the grader; raise :class:`CheckFailed` if the grader says so.

    ``rest`` is empty when the grader holds the expected value itself (from the instructor's
    reference run), else ``(expected, mistakes)`` as the test computed them.
    """
    values, hints = [received], []
    if rest:
        expected, mistakes = rest
        values.append(expected)
        for hint, wrong in (mistakes or {}).items():
            hints.append(str(hint))
            values.append(wrong)
    described, data = encode_values(values)
    header = {"site": site, "name": str(name), "values": described, "hints": hints}
    header = json.dumps(header).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(os.environ[SOCKET_ENV])
        connection.sendall(MAGIC + struct.pack("<IQ", len(header), len(data)) + header + data)
        connection.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    message = json.loads(reply.decode())["message"]
    if message is not None:
        raise CheckFailed(message)


def record_check(site: str, kind: str, name: str, received: Any, expected: Any, **options: Any):
    """In the instructor's reference run: publish the check's expected values, then check."""
    from IPython.display import publish_display_data  # only the reference run has IPython

    mistakes = options.get("mistakes") or {}
    described, data = encode_values([expected, *mistakes.values()])
    record = {
        "site": site,
        "kind": kind,
        "name": name,
        "rtol": options.get("rtol", 1e-6),
        "atol": options.get("atol", 1e-8),
        "values": described,
        "hints": [str(h) for h in mistakes],
        "data": base64.b64encode(data).decode(),
    }
    publish_display_data({REFERENCE_MIME: record})
    (check_scalar if kind == "check_scalar" else check_array)(name, received, expected, **options)


def decode_values(described: list[dict], data: bytes) -> list[Any]:
    """The values :func:`encode_values` described; never unpickles anything."""
    values = []
    for item in described:
        if item.get("none"):
            values.append(None)
        elif "array" in item:
            shape = tuple(int(n) for n in item["array"])
            offset, nbytes = int(item["offset"]), int(item["nbytes"])
            if any(n < 0 for n in shape) or nbytes != 8 * int(np.prod(shape, dtype=np.int64)):
                raise ValueError("malformed array")
            if offset < 0 or offset + nbytes > len(data):
                raise ValueError("array data out of range")
            array = np.frombuffer(data, dtype=np.float64, count=nbytes // 8, offset=offset)
            values.append(array.reshape(shape).copy())
        else:
            values.append(
                Described(str(item.get("described", "a value"))[:200], scalar=bool(item["scalar"]))
            )
    return values


def read_report(connection: socket.socket) -> tuple[dict, bytes]:
    """The header and data of one report read from ``connection`` (the grader's end)."""
    head = _read_exactly(connection, 16)
    if head[:4] != MAGIC:
        raise ValueError("not a check report")
    header_length, data_length = struct.unpack("<IQ", head[4:])
    if header_length > MAX_HEADER or data_length > MAX_DATA:
        raise ValueError("the values are too large")
    header = json.loads(_read_exactly(connection, header_length).decode())
    if not isinstance(header, dict) or not isinstance(header.get("values"), list):
        raise ValueError("malformed report")
    return header, _read_exactly(connection, data_length)


def _read_exactly(connection: socket.socket, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = connection.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ValueError("the report was cut short")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
