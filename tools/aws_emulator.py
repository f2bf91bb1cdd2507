#!/usr/bin/env python3
"""Local AWS emulator for tests and the demo: moto's server plus a Smithy RPC v2 CBOR front.

moto (5.2.5) serves S3, DynamoDB, Secrets Manager and CloudWatch on one loopback port. Current AWS
SDKs (aws-sdk-cloudwatch for Rust >= 1.100, botocore >= 1.42) speak the Smithy RPC v2 CBOR protocol to
CloudWatch, which moto does not route (it answers 404). `CborFront`, a WSGI middleware in front of moto,
translates such calls generically, for any operation of the service model:

    POST /service/<Service>/operation/<Operation>   (smithy-protocol: rpc-v2-cbor, CBOR body)
      -> CBOR decoded, walked along botocore's input shape
      -> serialised as the awsQuery form botocore itself would send (its `query` serializer)
      -> handed to moto's WSGI app in-process (same signature and region headers)
      -> moto's XML parsed with botocore's `query` response parser for the output shape
      -> encoded as CBOR along the output shape (timestamps as tag 1 epoch seconds)

Errors keep their HTTP status and become the body `{"__type": <shape or code>, "message": ...}` plus the
`x-amzn-query-error: <Code>;<Sender|Receiver>` header, as CloudWatch (an awsQueryCompatible service)
sends them; the SDKs take the error code from that header, so it matches the query-era code
("ResourceNotFound", "InvalidParameterValue").

Usage: aws_emulator.py [--host 127.0.0.1] [--port 0] [--ignore-stdin] [--verbose]
Prints exactly one line `listening on http://HOST:PORT` to stdout once it accepts connections. It exits on
SIGTERM/SIGINT and, unless --ignore-stdin, when its stdin reaches EOF: a test harness that spawns it
with a piped stdin therefore never leaves it behind, even when the harness is killed.
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import os
import re
import signal
import sys
import threading
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import botocore.session
import cbor2
from botocore.awsrequest import HeadersDict
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

CBOR_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)/?$")
CBOR_CONTENT_TYPE = "application/cbor"
SMITHY_PROTOCOL = "rpc-v2-cbor"

# Smithy service shape name (the path segment) -> botocore service name. The smithy name is the
# `targetPrefix` of the botocore model; add a line here to front another CBOR service that moto
# serves over awsQuery.
CBOR_SERVICES = {
    "GraniteServiceVersion20100801": "cloudwatch",
}

# Request headers that belong to the CBOR request and must not reach moto's query handler.
DROPPED_ENVIRON_KEYS = (
    "HTTP_SMITHY_PROTOCOL",
    "HTTP_ACCEPT",
    "HTTP_CONTENT_ENCODING",
    "HTTP_X_AMZ_TARGET",
    "HTTP_AMZ_SDK_REQUEST",
    "HTTP_AMZ_SDK_INVOCATION_ID",
    "HTTP_X_AMZ_CONTENT_SHA256",
    "HTTP_TRANSFER_ENCODING",
)

LOG = logging.getLogger("aws_emulator")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class _Translation:
    """The botocore pieces for one service, loaded once and shared by all request threads."""

    def __init__(self, service_model: ServiceModel) -> None:
        self.service_model = service_model
        # No client-side validation: moto decides what is valid, like the real service.
        self.serializer = create_serializer("query", include_validation=False)
        self.error_shapes = {}
        for shape in service_model.error_shapes:
            code = shape.metadata.get("error", {}).get("code", shape.name)
            self.error_shapes[code] = shape.name

    def operation(self, name: str) -> OperationModel | None:
        if name not in self.service_model.operation_names:
            return None
        return self.service_model.operation_model(name)


class CborFront:
    """WSGI middleware: Smithy RPC v2 CBOR requests in, moto's awsQuery handling behind."""

    def __init__(self, app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self._session = botocore.session.get_session()
        self._translations: dict[str, _Translation] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        match = CBOR_PATH.match(environ.get("PATH_INFO", ""))
        if (
            match is None
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("HTTP_SMITHY_PROTOCOL", "").lower() != SMITHY_PROTOCOL
        ):
            return self.app(environ, start_response)
        try:
            status, headers, body = self._handle(
                environ, match.group("service"), match.group("operation")
            )
        except NotImplementedError as exc:
            # moto lacks the operation. 501 is not retried by the SDKs, unlike 500.
            LOG.warning("%s", exc)
            status, headers, body = _error(501, "NotImplemented", f"moto: {exc}", "Receiver")
        except Exception as exc:  # a bug here must reach the client as an error, not a hang
            LOG.exception("CBOR front failed")
            status, headers, body = _error(500, "InternalFailure", f"CBOR front: {exc!r}", "Receiver")
        headers.append(("Content-Length", str(len(body))))
        start_response(_status_line(status), headers)
        return [body]

    def _translation(self, smithy_service: str) -> _Translation | None:
        service_name = CBOR_SERVICES.get(smithy_service)
        if service_name is None:
            return None
        with self._lock:
            translation = self._translations.get(service_name)
            if translation is None:
                model = self._session.get_service_model(service_name)
                translation = _Translation(model)
                self._translations[service_name] = translation
            return translation

    def _handle(
        self, environ: Environ, smithy_service: str, operation_name: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        translation = self._translation(smithy_service)
        if translation is None:
            return _error(404, "UnknownService", f"no CBOR translation for service {smithy_service}")
        operation = translation.operation(operation_name)
        if operation is None:
            return _error(
                400, "UnknownOperationException", f"unknown operation {smithy_service}.{operation_name}"
            )

        raw = _read_body(environ)
        LOG.debug(
            "CBOR %s.%s: %d bytes (Content-Encoding: %s)",
            smithy_service,
            operation_name,
            len(raw),
            environ.get("HTTP_CONTENT_ENCODING", "identity"),
        )
        document = cbor2.loads(raw) if raw else {}
        params = _from_cbor(operation.input_shape, document) if operation.input_shape else {}

        form = translation.serializer.serialize_to_request(params, operation)["body"]
        form_body = urlencode(form).encode("utf-8")
        status, moto_headers, moto_body = self._call_moto(environ, form_body, translation)

        parser = create_parser("query")
        parsed = parser.parse(
            {"body": moto_body, "headers": moto_headers, "status_code": status},
            operation.output_shape,
        )
        request_id = parsed.get("ResponseMetadata", {}).get("RequestId") or moto_headers.get(
            "x-amzn-requestid", ""
        )
        if status >= 300 or "Error" in parsed:
            err = parsed.get("Error", {})
            code = err.get("Code") or f"Http{status}"
            message = err.get("Message") or moto_body.decode("utf-8", "replace")[:500]
            fault = err.get("Type") or ("Sender" if status < 500 else "Receiver")
            status = status if status >= 300 else 500
            return _error(status, code, message, fault, translation.error_shapes.get(code), request_id)

        parsed.pop("ResponseMetadata", None)
        output = _to_cbor(operation.output_shape, parsed) if operation.output_shape else {}
        return status, _cbor_headers(request_id), cbor2.dumps(output)

    def _call_moto(
        self, environ: Environ, form_body: bytes, translation: _Translation
    ) -> tuple[int, HeadersDict, bytes]:
        inner = {k: v for k, v in environ.items() if k not in DROPPED_ENVIRON_KEYS}
        # moto routes on the SigV4 credential scope; give unsigned requests one.
        inner.setdefault(
            "HTTP_AUTHORIZATION",
            "AWS4-HMAC-SHA256 Credential=testing/20000101/us-east-1/"
            f"{translation.service_model.signing_name}/aws4_request, "
            "SignedHeaders=host, Signature=0",
        )
        inner.update(
            {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/",
                "QUERY_STRING": "",
                "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
                "CONTENT_LENGTH": str(len(form_body)),
                "wsgi.input": io.BytesIO(form_body),
            }
        )
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = HeadersDict(headers)
            return lambda _data: None

        result = self.app(inner, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], body


def _read_body(environ: Environ) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    raw = stream.read(int(length)) if length else stream.read()
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").lower()
    # PutMetricData is @requestCompression: SDKs gzip bodies above 10 KiB.
    if "gzip" in encoding:
        raw = gzip.decompress(raw)
    elif "deflate" in encoding:
        raw = zlib.decompress(raw)
    return raw


def _from_cbor(shape: Shape, value: Any) -> Any:
    """CBOR document -> the parameters botocore's serializer expects, along the input shape."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        members = shape.members
        out = {}
        for key, item in value.items():
            if key in members and item is not None:
                out[key] = _from_cbor(members[key], item)
        return out
    if kind == "list":
        return [_from_cbor(shape.member, item) for item in value if item is not None]
    if kind == "map":
        return {k: _from_cbor(shape.value, v) for k, v in value.items() if v is not None}
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if kind in ("double", "float"):
        return float(value)
    return value


def _to_cbor(shape: Shape, value: Any) -> Any:
    """Parsed query output -> CBOR data, along the output shape (Smithy RPC v2 CBOR encoding rules)."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members
        return {
            key: _to_cbor(members[key], item)
            for key, item in value.items()
            if key in members and item is not None
        }
    if kind == "list":
        return [_to_cbor(shape.member, item) for item in value]
    if kind == "map":
        return {k: _to_cbor(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            seconds = value.timestamp()
        else:
            seconds = float(value)
        return cbor2.CBORTag(1, seconds)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    return value


def _cbor_headers(request_id: str) -> list[tuple[str, str]]:
    headers = [("Content-Type", CBOR_CONTENT_TYPE), ("smithy-protocol", SMITHY_PROTOCOL)]
    if request_id:
        headers.append(("x-amzn-RequestId", request_id))
    return headers


def _error(
    status: int,
    code: str,
    message: str,
    fault: str = "Sender",
    shape_name: str | None = None,
    request_id: str = "",
) -> tuple[int, list[tuple[str, str]], bytes]:
    # `__type` carries the modeled shape name, as the real service does; the query-era code travels in
    # x-amzn-query-error, which both smithy-rs and botocore prefer for awsQueryCompatible services.
    body = cbor2.dumps({"__type": shape_name or code, "message": message})
    headers = _cbor_headers(request_id)
    headers.append(("x-amzn-query-error", f"{code};{fault}"))
    return status, headers, body


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _watch_stdin(stop: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--ignore-stdin",
        action="store_true",
        help="do not exit when stdin reaches EOF (for running it in the background by hand)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="aws_emulator: %(levelname)s %(message)s")
    LOG.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.ERROR)

    # Imported late: moto's import is slow and prints warnings we want after argument errors.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = CborFront(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port
    # moto builds some self-referencing URLs from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not args.ignore_stdin:
        threading.Thread(target=_watch_stdin, args=(stop,), name="stdin-watch", daemon=True).start()

    serving = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    serving.start()
    print(f"listening on http://{args.host}:{port}", flush=True)

    while not stop.wait(1.0):
        if not serving.is_alive():
            return 1
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
