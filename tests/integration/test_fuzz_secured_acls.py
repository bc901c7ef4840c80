"""`python -m compat.fuzz_differential --secured`: the restricted user's ACLs reach each kind of
refusal the docstring of fuzzer_acls promises, checked against Ottla's StandardAuthorizer
without sockets (the run itself needs the reference Kafka)."""

from __future__ import annotations

import pytest

from compat.fuzz_differential import FUZZER, Names, fuzzer_acls, main
from ottla.server.security.authorizer import Acl, AclOperation as Op, AclPermissionType, Authorizer, PatternType, ResourceType


def _authorizer(names: Names) -> Authorizer:
    acls = [Acl(ResourceType(kind), name, PatternType(pattern), f"User:{FUZZER}", "*", Op(operation), AclPermissionType(permission))
            for kind, name, pattern, operation, permission in fuzzer_acls(names)]
    return Authorizer(None, frozenset({"User:ANONYMOUS"}), False, acls)


def test_the_acls_reach_each_kind_of_refusal() -> None:
    names = Names("t")
    authorizer = _authorizer(names)

    def may(operation: Op, kind: ResourceType, name: str) -> bool:
        return authorizer.authorize(f"User:{FUZZER}", "127.0.0.1", operation, kind, name)

    topic, group, txn, cluster = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID, ResourceType.CLUSTER
    assert may(Op.WRITE, topic, names.sink) and may(Op.READ, topic, names.topic("topic"))
    assert not may(Op.ALTER, topic, names.topic("topic"))  # DENY beats ALL
    assert may(Op.DESCRIBE, topic, names.topic("a")) and not may(Op.READ, topic, names.topic("a"))
    assert may(Op.CREATE, topic, names.missing("topic")) and not may(Op.DESCRIBE, topic, names.missing("topic"))
    assert may(Op.READ, group, names.group) and may(Op.DESCRIBE, group, names.group)  # READ implies DESCRIBE
    assert may(Op.READ, group, names.fresh(1, 1)) and may(Op.READ, group, names.fresh(150, 2))
    assert not may(Op.READ, group, names.fresh(11, 1)) and not may(Op.READ, group, names.fresh(2, 1))
    assert may(Op.DESCRIBE, group, names.missing("group")) and not may(Op.READ, group, names.missing("group"))
    assert may(Op.WRITE, txn, names.fresh(1, 1)) and not may(Op.WRITE, txn, names.fresh(12, 1)) and not may(Op.WRITE, txn, names.fresh(3, 1))
    assert may(Op.DESCRIBE_CONFIGS, cluster, "kafka-cluster")
    assert not any(may(op, cluster, "kafka-cluster") for op in (Op.ALTER_CONFIGS, Op.DESCRIBE, Op.ALTER, Op.IDEMPOTENT_WRITE))


def test_secured_starts_its_own_brokers() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--secured", "--brokers", "127.0.0.1:1", "127.0.0.1:2"])
    assert exit_.value.code == 2
