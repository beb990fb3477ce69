"""A real gRPC server and client (grpcio) for the gateway's gRPC tests.

Messages are raw bytes (no protobuf, no generated code): the service `test.Echo` is
registered with generic handlers.

    peer.py server [--cert PEM --key PEM]
        Serves on a free port of 127.0.0.1 (TLS with the certificate when given) and prints
        `listening PORT`. Methods:
          Unary         answers `echo:` + the request;
          Stream        the request is a count N: answers `item-0` ... `item-(N-1)`;
          Fail          answers nothing: status FAILED_PRECONDITION, its message the request,
                        and the trailing metadata `x-reason: precondition`;
          StreamThenFail  answers `item-0`, `item-1`, then fails as Fail does (the status
                        then travels in trailers after data, not in a headers-only answer).
    peer.py client TARGET AUTHORITY METHOD REQUEST [--ca PEM]
        One call over h2c (TLS with the CA when given, the SNI being AUTHORITY); prints one
        JSON object: code, details, responses and trailing metadata.
"""

import argparse
import json
import sys
from concurrent import futures

import grpc

SERVICE = "test.Echo"


def unary(request, context):
    return b"echo:" + request


def stream(request, context):
    for i in range(int(request)):
        yield b"item-%d" % i


def fail(request, context):
    message = request.decode()
    context.set_trailing_metadata((("x-reason", "precondition"),))
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)


def stream_then_fail(request, context):
    yield b"item-0"
    yield b"item-1"
    fail(request, context)


def serve(args):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "StreamThenFail": grpc.unary_stream_rpc_method_handler(stream_then_fail),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if args.cert:
        with open(args.cert, "rb") as cert, open(args.key, "rb") as key:
            credentials = grpc.ssl_server_credentials(((key.read(), cert.read()),))
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("listening", port, flush=True)
    server.wait_for_termination()


def call(args):
    options = [("grpc.default_authority", args.authority)]
    if args.ca:
        with open(args.ca, "rb") as ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
        options.append(("grpc.ssl_target_name_override", args.authority))
        channel = grpc.secure_channel(args.target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=options)
    path = "/%s/%s" % (SERVICE, args.method)
    request = args.request.encode()
    result = {"code": "OK", "details": None, "responses": [], "trailers": {}}
    with channel:
        try:
            if args.method in ("Unary", "Fail"):
                response, call = channel.unary_unary(path).with_call(request, timeout=10)
                result["responses"].append(response.decode())
            else:
                call = channel.unary_stream(path)(request, timeout=10)
                for response in call:
                    result["responses"].append(response.decode())
        except grpc.RpcError as error:
            # The error is the call: it carries the status and the trailing metadata.
            call = error
            result["code"] = error.code().name
            result["details"] = error.details()
        result["trailers"] = {key: value for key, value in call.trailing_metadata() or ()}
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server")
    server.add_argument("--cert")
    server.add_argument("--key")
    client = commands.add_parser("client")
    client.add_argument("target")
    client.add_argument("authority")
    client.add_argument("method")
    client.add_argument("request")
    client.add_argument("--ca")
    args = parser.parse_args()
    serve(args) if args.command == "server" else call(args)


if __name__ == "__main__":
    sys.exit(main())
