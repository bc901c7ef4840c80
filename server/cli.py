"""The `ottla` command line."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ottla", description="A Kafka wire-protocol compatible broker.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the broker")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9092, help="port to listen on; 0 picks a free one (default 9092)")
    store = serve.add_mutually_exclusive_group()
    store.add_argument("--data-dir", default="./ottla-data", help="log directory (default ./ottla-data)")
    store.add_argument("--memory", action="store_true", help="keep everything in memory, write no files")
    serve.add_argument("--node-id", type=int, default=1, help="this broker's node id (default 1)")
    serve.add_argument("--advertised-host", default=None, help="host name given to clients (default: --host)")
    serve.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="text", choices=["text", "json"], help="json: one object per line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from server.logs import configure

    configure(args.log_level, args.log_format)
    return asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    from server.broker import Broker

    broker = Broker(
        host=args.host,
        port=args.port,
        data_dir=None if args.memory else args.data_dir,
        node_id=args.node_id,
        advertised_host=args.advertised_host,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await broker.start()
    data = "memory" if broker.data_dir is None else str(broker.data_dir)
    print(f"ottla ready bootstrap={broker.bootstrap_servers} data={data}", file=sys.stderr, flush=True)
    await stop.wait()
    await broker.stop()
    return 0
