"""The differential fuzzer (compat/fuzz_differential.py) on a tiny budget, against a real
`ottla serve` and the reference Kafka: it sends every input it draws to both, and reports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import REFERENCE_SETTINGS
from compat.fuzz_differential import SKIPPED, run
from compat.harness import OttlaBroker, wait_for
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture(scope="module")
def ottla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with OttlaBroker(tmp_path_factory.mktemp("fuzz-differential") / "ottla", settings=REFERENCE_SETTINGS) as broker:
        yield broker.bootstrap


def test_the_fuzzer_runs_against_both_and_reports(ottla: str, reference_kafka: str) -> None:
    report = run(ottla, reference_kafka, seed=3, count=40)
    assert report.sent + report.not_sent == 40 and report.sent > 0
    assert report.targets > 100  # every version of every client API both advertise
    assert not set(report.per_api) & {ApiKey(key).name for key in SKIPPED}
    lines = report.lines(lambda index: f"replay {index}")
    assert lines[0].startswith("seed 3: ")
    assert all(line.strip().startswith("replay: replay ") for line in lines[2::2])


def test_a_replay_sends_one_input_and_shows_both_answers(ottla: str, reference_kafka: str) -> None:
    shown: list[str] = []
    report = run(ottla, reference_kafka, seed=3, count=0, only=5, show=shown.append)
    assert report.sent + report.not_sent == 1
    if report.sent:
        assert [line.split(":")[0].strip() for line in shown[1:]] == ["Ottla", "Kafka"]


def test_the_module_is_a_command() -> None:
    from compat.fuzz_differential import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0


def test_order_ids_and_duplicates_do_not_count_but_error_codes_do() -> None:
    from compat.fuzz_differential import Names, Peer, differences, skeleton

    names = Names("t")
    ottla, kafka = Peer("Ottla", "-", {"fzt-a": b"1" * 16}), Peer("Kafka", "-", {"fzt-a": b"2" * 16})
    body: dict[str, object] = {"topics": [{"name": "x"}, {"name": "y"}, {"name": "y"}]}  # named: not a listing
    ours = {"throttle_time_ms": 0, "topics": [{"name": "x", "topic_id": b"1" * 16, "error_code": 0},
                                              {"name": "y", "topic_id": bytes(16), "error_code": 3},
                                              {"name": "y", "topic_id": bytes(16), "error_code": 3}]}
    theirs = {"throttle_time_ms": 9, "topics": [{"name": "y", "topic_id": bytes(16), "error_code": 3},
                                                {"name": "x", "topic_id": b"2" * 16, "error_code": 36}]}
    shapes = skeleton(3, body, ours, ottla, names), skeleton(3, body, theirs, kafka, names)
    assert differences(*shapes) == [(".topics.<duplicates>", 1, "<absent>"),
                                    (".topics[x,<id of fzt-a>].error_code", "NONE", "TOPIC_ALREADY_EXISTS")]


def test_messages_are_compared_masked_and_only_beside_the_same_error_codes() -> None:
    from compat.fuzz_differential import Names, Peer, differences, skeleton

    names = Names("t")
    ottla = Peer("Ottla", "127.0.0.1:9001", {"fzt-a": b"1" * 16}, members={"<member-1>": "client-1"})
    kafka = Peer("Kafka", "127.0.0.1:9002", {"fzt-a": b"2" * 16}, members={"<member-1>": "client-2"})
    body: dict[str, object] = {"topics": [{"name": "fzt-a"}, {"name": "x"}, {"name": "y"}]}

    def answer(peer: Peer, codes: tuple[int, int, int], texts: tuple[str | None, str | None, str | None]) -> dict[str, object]:
        id_text = "MTExMTExMTExMTExMTExMQ" if peer.name == "Ottla" else "MjIyMjIyMjIyMjIyMjIyMg"  # Uuid.toString of each id
        member = peer.members["<member-1>"]
        return {"topics": [
            {"name": "fzt-a", "error_code": codes[0], "error_message": f"{texts[0]} {id_text} of {member} in fzt-7-1 at {peer.bootstrap}"},
            {"name": "x", "error_code": codes[1], "error_message": texts[1]},
            {"name": "y", "error_code": codes[2], "error_message": texts[2]}]}

    ours = answer(ottla, (3, 0, 42), ("Unknown", None, "ours"))
    theirs = answer(kafka, (3, 0, 87), ("Unknown", "", "theirs"))
    assert differences(skeleton(19, body, ours, ottla, names), skeleton(19, body, theirs, kafka, names)) == [
        (".topics[y].error_code", "INVALID_REQUEST", "INVALID_RECORD")]  # without --messages, no text is compared
    shapes = skeleton(19, body, ours, ottla, names, messages=True), skeleton(19, body, theirs, kafka, names, messages=True)
    assert shapes[0]["topics"]["[fzt-a]"]["error_message"] == "Unknown <id of a> of <member-1> in <fresh> at <host:port>"
    assert differences(*shapes) == [(".topics[x].error_message", None, ""),  # Kafka tells null from ""
                                    (".topics[y].error_code", "INVALID_REQUEST", "INVALID_RECORD")]


def test_placeholders_of_a_populated_group_stand_for_each_brokers_own_members() -> None:
    from compat.fuzz_differential import Names, Peer, make_request, population_of

    peer = Peer("Ottla", "-", members={"<member-1>": "m-1", "<member-2>": "m-2"}, generation=7)
    assert peer.ids_of({"member_id": "<member-2>", "generation_id": 2_000_000_001, "members": [{"member_id": "<member-1>"}],
                        "flag": True, "session_timeout_ms": 2_000_000_000}) == {
        "member_id": "m-2", "generation_id": 8, "members": [{"member_id": "m-1"}], "flag": True, "session_timeout_ms": 7}
    names = Names("t")
    targets = [(int(ApiKey.HEARTBEAT), 4), (int(ApiKey.METADATA), 12)]
    drawn = [make_request(9, index, targets, names, populated=0.5) for index in range(200)]
    assert drawn == [make_request(9, index, targets, names, populated=0.5) for index in range(200)]
    plain = [make_request(9, index, targets, names) for index in range(200)]
    populated = [index for index, (_, _, _, population) in enumerate(drawn) if population is not None]
    assert 30 < len(populated) < 70 and all(drawn[i][0] == ApiKey.HEARTBEAT for i in populated)
    # An input without a populated group is drawn as it was before populated groups existed.
    assert all(drawn[i] == plain[i] for i in range(200) if i not in populated)
    assert any(drawn[i][2]["member_id"] in ("<member-1>", "<member-2>") and drawn[i][2]["group_id"] == f"fzt-{i}-0" for i in populated)
    assert population_of(9, 0, int(ApiKey.METADATA), 1.0, names) is None


def test_a_populated_group_meets_a_heartbeat_alike_on_both(ottla: str, reference_kafka: str) -> None:
    """Members joined (in two steps) and synced on both brokers; their own ids and generation
    make a heartbeat succeed on each, a generation ahead fails alike."""
    import uuid

    from compat.differential import _Connection
    from compat.fuzz_differential import Names, Peer, Population, populate

    names = Names(uuid.uuid4().hex[:6])
    peers = (Peer("Ottla", ottla), Peer("Kafka", reference_kafka))
    for kind, members in (("classic", 2), ("consumer", 1)):
        for peer in peers:
            group = names.fresh(0, 0 if kind == "classic" else 1)
            # As a client would: the group's coordinator first (a fresh Kafka creates its topic
            # then), and until it has loaded its partition (DescribeGroups answers, Dead).
            finder = _Connection(peer.bootstrap)

            def coordinator_ready() -> bool:
                if finder.call(ApiKey.FIND_COORDINATOR, 3, {"key": group, "key_type": 0})["error_code"]:
                    return False
                described = finder.call(ApiKey.DESCRIBE_GROUPS, 5, {"groups": [group], "include_authorized_operations": False})
                return described["groups"][0]["error_code"] == ErrorCode.NONE

            try:
                assert wait_for(coordinator_ready, timeout=60)
            finally:
                finder.close()
            assert populate(peer, Population(group, kind, members), names, consumer_version=0) is None, peer.name
            assert len(set(peer.members.values())) == members
            conn = _Connection(peer.bootstrap)
            try:
                if kind == "classic":
                    for generation, code in ((2_000_000_000, ErrorCode.NONE), (2_000_000_001, ErrorCode.ILLEGAL_GENERATION)):
                        for member in ("<member-1>", "<member-2>"):
                            beat = conn.call(ApiKey.HEARTBEAT, 4, peer.ids_of({"group_id": group, "generation_id": generation,
                                                                               "member_id": member, "group_instance_id": None}))
                            assert beat["error_code"] == code, (peer.name, generation, member, beat)
                    described = conn.call(ApiKey.DESCRIBE_GROUPS, 5, {"groups": [group], "include_authorized_operations": False})
                    assert described["groups"][0]["group_state"] == "Stable" and len(described["groups"][0]["members"]) == 2
                else:
                    beat = conn.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, peer.ids_of({
                        "group_id": group, "member_id": "<member-1>", "member_epoch": 2_000_000_000, "instance_id": None,
                        "rack_id": None, "rebalance_timeout_ms": -1, "subscribed_topic_names": None, "server_assignor": None,
                        "topic_partitions": None}))
                    assert beat["error_code"] == 0 and beat["member_epoch"] == peer.generation, (peer.name, beat)
            finally:
                conn.close()
    assert peers[0].generation == peers[1].generation


def test_placeholders_of_a_populated_share_or_streams_group_stand_for_each_brokers_own() -> None:
    from compat.fuzz_differential import Names, Peer, make_request

    peer = Peer("Kafka", "-", members={"<member-1>": "m-1"}, generation=4, session_epoch=1, acquired=0)
    assert peer.ids_of({"member_id": "<member-1>", "member_epoch": 2_000_000_000, "share_session_epoch": 1_900_000_001,
                        "topics": [{"partitions": [{"acknowledgement_batches": [
                            {"first_offset": 7_000_000_000_000, "last_offset": 7_000_000_000_001}]}]}]}) == {
        "member_id": "m-1", "member_epoch": 4, "share_session_epoch": 2,
        "topics": [{"partitions": [{"acknowledgement_batches": [{"first_offset": 0, "last_offset": 1}]}]}]}
    names = Names("t")
    targets = [(int(ApiKey.SHARE_ACKNOWLEDGE), 1), (int(ApiKey.STREAMS_GROUP_HEARTBEAT), 0), (int(ApiKey.METADATA), 12),
               (int(ApiKey.HEARTBEAT), 4)]
    drawn = [make_request(5, index, targets, names, populated=0.7) for index in range(300)]
    assert drawn == [make_request(5, index, targets, names, populated=0.7) for index in range(300)]
    plain = [make_request(5, index, targets, names) for index in range(300)]
    kinds = {(api, population.kind) for api, _, _, population in drawn if population is not None}
    assert kinds == {(ApiKey.SHARE_ACKNOWLEDGE, "share"), (ApiKey.STREAMS_GROUP_HEARTBEAT, "streams"),
                     (ApiKey.HEARTBEAT, "classic"), (ApiKey.HEARTBEAT, "consumer")}
    # Only the populated inputs change; of them, share ones name the session and the acquired offset.
    assert all(drawn[i] == plain[i] for i in range(300) if drawn[i][3] is None)
    acknowledged = [drawn[i][2] for i in range(300) if drawn[i][3] is not None and drawn[i][0] == ApiKey.SHARE_ACKNOWLEDGE]
    assert any(body["share_session_epoch"] == 1_900_000_000 for body in acknowledged)
    assert any(batch["first_offset"] == 7_000_000_000_000 for body in acknowledged for topic in body["topics"]
               for partition in topic["partitions"] for batch in partition["acknowledgement_batches"])


def test_a_populated_share_or_streams_group_meets_its_member_alike_on_both(ottla: str, reference_kafka: str) -> None:
    """A share member assigned, its session holding the record at offset 0 of each partition;
    a streams member assigned: on each broker its own member acknowledges such a record in its
    session, or heartbeats at its epoch, alike."""
    import uuid

    from compat.differential import _Connection
    from compat.fuzz_differential import Names, Peer, Population, populate, set_up

    names = Names(uuid.uuid4().hex[:6])
    peers = (Peer("Ottla", ottla), Peer("Kafka", reference_kafka))
    answers = []
    for peer in peers:
        set_up(peer, names)
        assert populate(peer, Population(names.fresh(0, 0), "share", 1), names, consumer_version=0) is None, peer.name
        assert peer.session_epoch == 1 and peer.acquired == 0 and list(peer.members) == ["<member-1>"]
        conn = _Connection(peer.bootstrap)
        try:
            held = peer.held[1]  # the member's connection, which made the session (after the config setter's)
            acknowledged = held.call(ApiKey.SHARE_ACKNOWLEDGE, 1, peer.ids_of({
                "group_id": names.fresh(0, 0), "member_id": "<member-1>", "share_session_epoch": 1_900_000_000, "topics": [{
                    "topic_id": peer.topic_ids[names.topic("a")], "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                        {"first_offset": 7_000_000_000_000, "last_offset": 7_000_000_000_000, "acknowledge_types": [1]}]}]}]}))
            peer.release()
            assert populate(peer, Population(names.fresh(1, 0), "streams", 1), names, consumer_version=0) is None, peer.name
            beat = conn.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, peer.ids_of({
                "group_id": names.fresh(1, 0), "member_id": "<member-1>", "member_epoch": 2_000_000_000, "endpoint_information_epoch": 0,
                "instance_id": None, "rack_id": None, "rebalance_timeout_ms": -1, "topology": None, "active_tasks": None,
                "standby_tasks": None, "warmup_tasks": None, "process_id": "p", "user_endpoint": None, "client_tags": None,
                "task_offsets": None, "task_end_offsets": None, "shutdown_application": False}))
            answers.append((acknowledged["error_code"], [(p["partition_index"], p["error_code"]) for t in acknowledged["responses"]
                                                         for p in t["partitions"]], beat["error_code"], beat["member_epoch"] == peer.generation))
        finally:
            conn.close()
            peer.release()
    assert answers[0] == answers[1], answers


def test_a_populated_share_group_has_one_member() -> None:
    """Two share members would split the set-up topics by the assignor's hash of each broker's
    own topic ids, and end at a group epoch set by how the joins interleave: inputs naming a
    member's partitions or epoch would then meet unlike members."""
    from compat.fuzz_differential import Names, population_of

    names = Names("0a1b2c")
    drawn = [population_of(81, index, ApiKey.SHARE_FETCH, 1.0, names) for index in range(40)]
    assert {(p.kind, p.members) for p in drawn if p is not None} == {("share", 1)}


def test_placeholders_of_a_populated_transaction_stand_for_each_brokers_own_producer() -> None:
    from compat.fuzz_differential import TXN_BATCH_PLACEHOLDER, Names, Peer, make_request
    from ottla.wire.records import iter_batches

    peer = Peer("Kafka", "-", producer_id=41, producer_epoch=3)
    placed = peer.ids_of({"producer_id": 9_000_000_000_001, "producer_epoch": 32_000, "producer_id_filters": [9_000_000_000_000],
                          "records": TXN_BATCH_PLACEHOLDER + bytes([1, 0, 0, 0, 2, 1])})
    assert {k: v for k, v in placed.items() if k != "records"} == {"producer_id": 42, "producer_epoch": 2, "producer_id_filters": [41]}
    [(batch, _)] = list(iter_batches(placed["records"]))
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.is_transactional) == (41, 4, 2, True)
    names = Names("t")
    targets = [(int(ApiKey.END_TXN), 3), (int(ApiKey.PRODUCE), 9), (int(ApiKey.LIST_TRANSACTIONS), 1), (int(ApiKey.METADATA), 12)]
    drawn = [make_request(3, index, targets, names, populated=0.7) for index in range(300)]
    assert drawn == [make_request(3, index, targets, names, populated=0.7) for index in range(300)]
    plain = [make_request(3, index, targets, names) for index in range(300)]
    assert all(drawn[i] == plain[i] for i in range(300) if drawn[i][3] is None)
    populations = [population for _, _, _, population in drawn if population is not None]
    assert {p.kind for p in populations} == {"transaction"} and {p.ended for p in populations} == {None, "commit", "abort"}
    assert all(p.ended is None for p in populations if not p.added and not p.offsets)
    assert any(body["transactional_id"] == f"fzt-{i}-0" and body["producer_id"] == 9_000_000_000_000
               for i, (api, _, body, p) in enumerate(drawn) if p is not None and api == ApiKey.END_TXN)
    produced = [partition["records"] for api, _, body, p in drawn if p is not None and api == ApiKey.PRODUCE
                for topic in body["topic_data"] for partition in topic["partition_data"]]
    assert any(records is not None and records.startswith(TXN_BATCH_PLACEHOLDER) for records in produced)


def test_a_populated_transaction_meets_its_producer_alike_on_both(ottla: str, reference_kafka: str) -> None:
    """An ongoing transaction (a sink partition added, a record in it, offsets added) and one
    committed by a transaction version 2 client, on each broker: DescribeTransactions shows them alike, and each broker's own
    producer id and epoch end the ongoing one, an epoch ahead is fenced alike."""
    import uuid

    from compat.differential import _Connection
    from compat.fuzz_differential import Names, Peer, Population, populate, set_up

    names = Names(uuid.uuid4().hex[:6])
    peers = (Peer("Ottla", ottla), Peer("Kafka", reference_kafka))
    seen = []
    for peer in peers:
        set_up(peer, names)
        conn = _Connection(peer.bootstrap)
        try:
            ongoing, committed = names.fresh(0, 0), names.fresh(1, 0)
            assert populate(peer, Population(committed, "transaction", 0, (0, 1), True, "commit", True), names, None) is None, peer.name
            assert populate(peer, Population(ongoing, "transaction", 0, (1,), True), names, None) is None, peer.name
            described = conn.call(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [ongoing, committed]})["transaction_states"]
            # Ottla's __consumer_offsets has one partition, Kafka's 50 (README): its index differs.
            states = [(s["transactional_id"], s["error_code"], s["transaction_state"], sorted(
                (t["topic"], len(t["partitions"]) if t["topic"] == "__consumer_offsets" else sorted(t["partitions"]))
                for t in s["topics"])) for s in described]
            ended = [conn.call(ApiKey.END_TXN, 3, peer.ids_of({"transactional_id": ongoing, "producer_id": 9_000_000_000_000,
                                                               "producer_epoch": epoch, "committed": False}))["error_code"]
                     for epoch in (32_002, 32_001)]
            seen.append((states, ended))
        finally:
            conn.close()
    assert seen[0] == seen[1], seen
    assert seen[0][1][1] == ErrorCode.NONE and seen[0][0][0][2] == "Ongoing"
