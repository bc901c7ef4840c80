"""The Java client (kafka-clients of the reference release) through compat/java's driver, seen
through the contract in compat/drivers/__init__.py so the matrix can run it like any other."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from compat.drivers import (
    ADMIN_ALTERED_RETENTION, ADMIN_COMMITTED, ADMIN_CONFIGS, ADMIN_DELETE_BEFORE, ADMIN_PARTITIONS, ADMIN_RECORDS, CODECS, main,
    parse_args,
    security,
)
from compat.kafka import driver_command, run_driver


# The JAAS login module of each SASL mechanism, for sasl.jaas.config.
_LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                  "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                  "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}


def security_config(args: argparse.Namespace) -> dict[str, str]:
    """The Java client's settings for --security (see the contract); its PEM keystore is one
    file holding the key and the certificate, written beside the client certificate."""
    secured = security(args)
    if secured is None:
        return {}
    config = {"security.protocol": secured.protocol}
    if secured.tls:
        config.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(secured.ca)})
        if secured.cert and secured.key:
            keystore = Path(secured.cert).with_suffix(".keystore.pem")
            if not keystore.exists():
                keystore.write_text(Path(secured.key).read_text() + Path(secured.cert).read_text())
            config.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore)})
    if secured.sasl:
        assert secured.mechanism is not None
        config.update({"sasl.mechanism": secured.mechanism, "sasl.jaas.config":
                       f'{_LOGIN_MODULES[secured.mechanism]} required username="{secured.username}" password="{secured.password}";'})
    return config


def _run(args: argparse.Namespace, action: str, **kwargs: Any) -> dict[str, Any]:
    kwargs["config"] = {**security_config(args), **kwargs.get("config", {})}
    result = run_driver(args.bootstrap, args.topic, action, timeout_ms=int(args.timeout * 1000), **kwargs)
    if not result["ok"]:
        raise RuntimeError(f"{result['error']}: {result['message']}")
    return result


def create(args: argparse.Namespace) -> dict[str, Any]:
    _run(args, "create-topic", partitions=args.partitions)
    return {"created": True}


def produce(args: argparse.Namespace) -> dict[str, Any]:
    # Stock defaults since Kafka 3.0: idempotence on, acks=all, so InitProducerId is exercised.
    records = _run(args, "produce", count=args.count)["records"]
    return {"produced": len(records), "delivered": [[r["key"], r["partition"], r["offset"]] for r in records]}


def consume(args: argparse.Namespace) -> dict[str, Any]:
    result = _run(args, "consume")
    rows = [[r["partition"], r["offset"], r["key"], r["value"]] for r in result["records"]]
    return {"partitions": result["partitions"], "records": rows}


def admin(args: argparse.Namespace) -> dict[str, Any]:
    plan = {"altered_retention": ADMIN_ALTERED_RETENTION, "delete_before": ADMIN_DELETE_BEFORE, "committed": ADMIN_COMMITTED}
    result = _run(args, "admin-plan", partitions=ADMIN_PARTITIONS, count=ADMIN_RECORDS, topic_config=ADMIN_CONFIGS,
                  plan={k: str(v) for k, v in plan.items()})
    return {k: result[k] for k in ("configs", "partitions", "low_watermark", "brokers", "controller", "group")}


def idempotent(args: argparse.Namespace) -> dict[str, Any]:
    # One request in flight, no linger and one record a batch (a partition sends one batch a
    # request), so the records go one request each and each dropped response costs a retry;
    # without batch.size the records queued behind the first went in a single second request.
    config = {"enable.idempotence": "true", "acks": "all", "max.in.flight.requests.per.connection": "1", "linger.ms": "0", "batch.size": "1"}
    records = _run(args, "produce", count=args.count, config=config)["records"]
    return {"produced": len(records), "delivered": [[r["key"], r["partition"], r["offset"]] for r in records]}


def codecs(args: argparse.Namespace) -> dict[str, Any]:
    """kafka-clients carries all four codecs (snappy-java, lz4-java, zstd-jni)."""
    results = {}
    for name in CODECS:
        topic = argparse.Namespace(**{**vars(args), "topic": f"{args.topic}-{name}"})
        _run(topic, "create-topic", partitions=1)
        _run(topic, "produce", count=args.count, config={"compression.type": name, "linger.ms": "50"})
        results[name] = consume(topic)["records"]
    return {"codecs": results, "unavailable": {}}


def _rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["partition"], r["offset"], r["key"], r["value"]] for r in records]


def transactions(args: argparse.Namespace) -> dict[str, Any]:
    result = _run(args, "transactions", count=args.count)
    return {"committed": _rows(result["committed"]["records"]), "uncommitted": _rows(result["uncommitted"]["records"])}


def ctp(args: argparse.Namespace) -> dict[str, Any]:
    result = _run(args, "ctp", count=args.count)
    return {"committed_offset": result["committed_offset"], "output": result["output"]}


def member(args: argparse.Namespace) -> None:
    """The JVM takes over this process, so the member's stdin, event lines and pid are the driver's own."""
    config = {**security_config(args), "group.protocol": args.group_protocol}
    cmd = driver_command(args.bootstrap, args.topic, "member", group=args.group, instance_id=args.instance_id,
                         session_timeout_ms=args.session_timeout_ms, timeout_ms=int(args.timeout * 1000), config=config)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    if parse_args().action == "member":
        member(parse_args())
    main({"create": create, "produce": produce, "consume": consume, "admin": admin, "idempotent": idempotent, "codecs": codecs,
          "transactions": transactions, "ctp": ctp})
