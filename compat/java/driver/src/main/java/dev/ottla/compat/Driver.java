package dev.ottla.compat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.StaleMemberEpochException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Runs one client action against any broker and prints one JSON object on stdout.
 *
 * <p>Usage: {@code Driver <bootstrap> <topic> <action> [--partitions N] [--count N]
 * [--timeout-ms N] [--group G] [-t key=value]... [-c key=value]...} with action one of
 * {@code create-topic} ({@code -t} sets topic configs), {@code produce}, {@code consume},
 * {@code consume-group}, {@code member}, {@code admin}, {@code admin-plan} (the matrix's admin plan,
 * its numbers given with {@code -p key=value}), {@code transactions} and {@code ctp} (the matrix's
 * transaction plans of compat/drivers/__init__.py). {@code -c} passes a client config through unchanged,
 * so a scenario can turn on idempotence, compression or acks without a new action; with
 * {@code transactional.id} set, {@code produce} sends its records in one committed transaction.
 *
 * <p>Contract: exit 0 with {@code {"ok": true, ...}}; exit 1 with {@code {"ok": false, "error":
 * <exception simple name>, "message": ...}} when the client or broker refused; exit 2 on bad
 * arguments. Output is deterministic for a given broker state (records sorted by partition, then
 * offset) so the same run against Ottla and Kafka can be diffed.
 */
public final class Driver {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String bootstrap;
    private final String topic;
    private final int partitions;
    private final int count;
    private final Duration timeout;
    private final String group;
    private final String instanceId;
    private final int sessionTimeoutMs;
    private final Map<String, String> topicConfigs;
    private final Properties extra;

    private Driver(String bootstrap, String topic, int partitions, int count, Duration timeout, String group,
                   String instanceId, int sessionTimeoutMs, Map<String, String> topicConfigs, Properties extra) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.partitions = partitions;
        this.count = count;
        this.timeout = timeout;
        this.group = group;
        this.instanceId = instanceId;
        this.sessionTimeoutMs = sessionTimeoutMs;
        this.topicConfigs = topicConfigs;
        this.extra = extra;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            usage("expected <bootstrap> <topic> <action>");
        }
        int partitions = 1;
        int count = 10;
        long timeoutMs = 30_000;
        String group = null;
        String instanceId = null;
        int sessionTimeoutMs = 6000;
        Map<String, String> topicConfigs = new TreeMap<>();
        Map<String, String> plan = new TreeMap<>();
        Properties extra = new Properties();
        for (int i = 3; i < args.length; i += 2) {
            if (i + 1 >= args.length) {
                usage("missing value for " + args[i]);
            }
            String value = args[i + 1];
            switch (args[i]) {
                case "--partitions" -> partitions = Integer.parseInt(value);
                case "--count" -> count = Integer.parseInt(value);
                case "--timeout-ms" -> timeoutMs = Long.parseLong(value);
                case "--group" -> group = value;
                case "--instance-id" -> instanceId = value;
                case "--session-timeout-ms" -> sessionTimeoutMs = Integer.parseInt(value);
                case "-c", "-t", "-p" -> {
                    int eq = value.indexOf('=');
                    if (eq < 1) {
                        usage(args[i] + " wants key=value, got " + value);
                    }
                    String k = value.substring(0, eq);
                    String v = value.substring(eq + 1);
                    switch (args[i]) {
                        case "-c" -> extra.setProperty(k, v);
                        case "-t" -> topicConfigs.put(k, v);
                        default -> plan.put(k, v);
                    }
                }
                default -> usage("unknown option " + args[i]);
            }
        }
        Driver driver = new Driver(args[0], args[1], partitions, count, Duration.ofMillis(timeoutMs), group,
                instanceId, sessionTimeoutMs, topicConfigs, extra);
        ObjectNode out = JSON.createObjectNode();
        out.put("action", args[2]);
        out.put("topic", args[1]);
        int status = 0;
        try {
            switch (args[2]) {
                case "create-topic" -> driver.createTopic(out);
                case "produce" -> driver.produce(out);
                case "consume" -> driver.consume(out);
                case "consume-group" -> driver.consumeGroup(out);
                case "member" -> driver.member();
                case "admin" -> driver.admin(out);
                case "admin-plan" -> driver.adminPlan(out, plan);
                case "transactions" -> driver.transactions(out);
                case "ctp" -> driver.ctp(out);
                default -> usage("unknown action " + args[2]);
            }
            out.put("ok", true);
        } catch (Exception e) {
            out.put("ok", false);
            putError(out, e);
            status = 1;
        }
        System.out.println(JSON.writeValueAsString(out));
        System.exit(status);
    }

    private static void putError(ObjectNode out, Exception e) {
        Throwable cause = reason(e);
        out.put("error", cause.getClass().getSimpleName());
        out.put("message", cause.getMessage());
    }

    /**
     * The exception that names why {@code e} happened: futures wrap the broker's error in an
     * ExecutionException, and a producer in an error state throws a plain KafkaException ("Cannot
     * execute transactional method because we are in an error state") around the error that put
     * it there (an InitProducerId refused by an ACL, say); the diff wants that error itself.
     */
    private static Throwable reason(Throwable e) {
        Throwable cause = e;
        while (cause.getCause() != null
                && (cause instanceof ExecutionException || cause.getClass() == KafkaException.class)) {
            cause = cause.getCause();
        }
        return cause;
    }

    private static void usage(String why) {
        System.err.println("usage: Driver <bootstrap> <topic> create-topic|produce|consume|consume-group|member|admin|admin-plan|transactions|ctp"
                + " [--partitions N] [--count N] [--timeout-ms N] [--group G] [--instance-id I]"
                + " [--session-timeout-ms N] [-t key=value]... [-p key=value]... [-c key=value]...");
        System.err.println(why);
        System.exit(2);
    }

    private Properties config() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.putAll(extra);
        return props;
    }

    private void createTopic(ObjectNode out) throws Exception {
        try (Admin admin = Admin.create(config())) {
            NewTopic newTopic = new NewTopic(topic, partitions, (short) 1).configs(topicConfigs);
            admin.createTopics(List.of(newTopic)).all().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        }
        out.put("partitions", partitions);
    }

    /** Records k{i}/v{i} with one header seq={i}; in one committed transaction if transactional.id is set. */
    private void produce(ObjectNode out) throws Exception {
        Properties props = config();
        props.putIfAbsent(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.putIfAbsent(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        boolean transactional = props.containsKey(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        List<Future<RecordMetadata>> sent = new ArrayList<>(count);
        // Sending stops at the first record that fails, as an application would: a refused login
        // fails only the one send waiting on metadata at that moment, so sending on would wait
        // out a reconnect and another refusal for every record left.
        AtomicReference<Exception> firstFailure = new AtomicReference<>();
        Callback remember = (metadata, failure) -> {
            if (failure != null) {
                firstFailure.compareAndSet(null, failure);
            }
        };
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            if (transactional) {
                producer.initTransactions();
                producer.beginTransaction();
            }
            for (int i = 0; i < count; i++) {
                if (firstFailure.get() != null) {
                    throw firstFailure.get();
                }
                ProducerRecord<String, String> record = new ProducerRecord<>(topic, "k" + i, "v" + i);
                record.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                sent.add(producer.send(record, remember));
            }
            if (transactional) {
                producer.commitTransaction();
            }
            producer.flush();
            ArrayNode records = out.putArray("records");
            for (int i = 0; i < count; i++) {
                RecordMetadata md = sent.get(i).get();
                ObjectNode r = records.addObject();
                r.put("key", "k" + i);
                r.put("partition", md.partition());
                r.put("offset", md.offset());
                r.put("timestamp", md.timestamp());
            }
        }
    }

    private KafkaProducer<String, String> transactionalProducer(String transactionalId) {
        Properties props = config();
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        KafkaProducer<String, String> producer = new KafkaProducer<>(props);
        producer.initTransactions();
        return producer;
    }

    /**
     * Transactional id "T-txn": k{i}/a{i} (i < count) to partition 0, aborted, then k{i}/c{i},
     * committed; then T read by assignment read_committed ("committed") and read_uncommitted.
     */
    private void transactions(ObjectNode out) throws Exception {
        try (KafkaProducer<String, String> producer = transactionalProducer(topic + "-txn")) {
            for (String prefix : List.of("a", "c")) {
                producer.beginTransaction();
                for (int i = 0; i < count; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k" + i, prefix + i));
                }
                // abortTransaction drops batches not yet sent: flush so the aborted records reach the log.
                producer.flush();
                if (prefix.equals("a")) {
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                }
            }
        }
        putRecords(out.putObject("committed"), read(topic, "read_committed"));
        putRecords(out.putObject("uncommitted"), read(topic, "read_uncommitted"));
    }

    /**
     * Consume-transform-produce: group "T-ctp" reads partition 0 of T; transactional id "T-ctp-txn"
     * writes each v{i} as out-v{i} to "T-out" with the consumer's offsets sent in the transaction
     * (sendOffsetsToTransaction); the first count/2 commit, the next count/2 abort. Reports the
     * group's committed offset on T-0 and "T-out" read read_committed.
     */
    private void ctp(ObjectNode out) throws Exception {
        String ctpGroup = topic + "-ctp";
        String output = topic + "-out";
        int batch = count / 2;
        Properties props = consumerConfig();
        props.put(ConsumerConfig.GROUP_ID_CONFIG, ctpGroup);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, Integer.toString(batch));
        TopicPartition tp = new TopicPartition(topic, 0);
        Long committed;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
             KafkaProducer<String, String> producer = transactionalProducer(ctpGroup + "-txn")) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> taken = new ArrayList<>();
            int transactions = 0;
            long deadline = System.nanoTime() + timeout.toNanos();
            while (transactions < 2) {
                if (System.nanoTime() > deadline) {
                    throw new TimeoutException(transactions + " transactions done after " + timeout);
                }
                for (ConsumerRecord<String, String> rec : consumer.poll(Duration.ofMillis(200))) {
                    if (transactions >= 2) {
                        break;
                    }
                    taken.add(rec);
                    if (taken.size() < batch) {
                        continue;
                    }
                    producer.beginTransaction();
                    for (ConsumerRecord<String, String> t : taken) {
                        producer.send(new ProducerRecord<>(output, 0, t.key(), "out-" + t.value()));
                    }
                    long next = taken.get(taken.size() - 1).offset() + 1;
                    producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(next)), consumer.groupMetadata());
                    producer.flush();
                    if (transactions == 0) {
                        producer.commitTransaction();
                    } else {
                        producer.abortTransaction();
                    }
                    taken.clear();
                    transactions++;
                }
            }
            OffsetAndMetadata at = consumer.committed(java.util.Set.of(tp), timeout).get(tp);
            committed = at == null ? null : at.offset();
        }
        if (committed == null) {
            out.putNull("committed_offset");
        } else {
            out.put("committed_offset", committed);
        }
        ArrayNode values = out.putArray("output");
        for (ConsumerRecord<String, String> rec : read(output, "read_committed")) {
            values.add(rec.value());
        }
    }

    /** Every partition of {@code name} from its start to the end offset seen at start, by assignment. */
    private List<ConsumerRecord<String, String>> read(String name, String isolation) throws Exception {
        Properties props = consumerConfig();
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> tps = consumer.partitionsFor(name, timeout).stream()
                    .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, timeout);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!caughtUp(consumer, end)) {
                if (System.nanoTime() > deadline) {
                    throw new TimeoutException("not at end offsets " + end + " after " + timeout);
                }
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
            }
        }
        got.sort(Comparator.comparingInt((ConsumerRecord<String, String> r) -> r.partition())
                .thenComparingLong(ConsumerRecord::offset));
        return got;
    }

    private Properties consumerConfig() {
        Properties props = config();
        props.putIfAbsent(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.putIfAbsent(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.putIfAbsent(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        return props;
    }

    /** Reads every partition from its start to the end offset seen at start, by assignment: no group. */
    private void consume(ObjectNode out) throws Exception {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerConfig())) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, timeout);
            List<TopicPartition> tps = infos.stream().map(p -> new TopicPartition(p.topic(), p.partition())).toList();
            out.put("partitions", tps.size());
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, timeout);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!caughtUp(consumer, end)) {
                if (System.nanoTime() > deadline) {
                    throw new TimeoutException("not at end offsets " + end + " after " + timeout);
                }
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
            }
        }
        putRecords(out, got);
    }

    /**
     * Subscribes as a member of {@code --group} (classic protocol), reads until it has {@code --count}
     * records, commits synchronously and leaves; then reports what the group coordinator kept.
     */
    private void consumeGroup(ObjectNode out) throws Exception {
        Properties props = consumerConfig();
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.putIfAbsent(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        TreeSet<Integer> assigned = new TreeSet<>();
        Map<Integer, Long> committed = new TreeMap<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> newly) {
                    newly.forEach(tp -> assigned.add(tp.partition()));
                }
            });
            long deadline = System.nanoTime() + timeout.toNanos();
            while (got.size() < count) {
                if (System.nanoTime() > deadline) {
                    throw new TimeoutException("group read " + got.size() + " of " + count + " records in " + timeout);
                }
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            consumer.commitSync(timeout);
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : consumer.committed(consumer.assignment(), timeout).entrySet()) {
                committed.put(e.getKey().partition(), e.getValue() == null ? null : e.getValue().offset());
            }
        }
        ArrayNode partitionsOut = out.putArray("assignment");
        assigned.forEach(partitionsOut::add);
        ObjectNode committedOut = out.putObject("committed");
        committed.forEach((p, o) -> committedOut.put(Integer.toString(p), o));
        putRecords(out, got);
        try (Admin admin = Admin.create(config())) {
            ObjectNode after = out.putObject("group_after_leave");
            call(after, "describeConsumerGroups", () -> describeGroup(admin));
            call(after, "listConsumerGroupOffsets", () -> groupOffsets(admin));
        }
    }

    /**
     * The long-lived group member of compat/drivers/__init__.py's contract: streams {"event":
     * "assigned"} after each rebalance and {"event": "records"} after each committed batch, until
     * "close" (or the end) on stdin; then it leaves the group and main prints the final object.
     */
    private void member() throws Exception {
        Properties props = consumerConfig();
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        if (instanceId != null) {
            props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
        }
        // group.protocol comes with -c; the consumer protocol (KIP-848) takes the session timeout and
        // heartbeat interval from the broker's group configs and refuses them as client configs.
        boolean consumerProtocol = "consumer".equalsIgnoreCase(props.getProperty(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic"));
        if (!consumerProtocol) {
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.toString(sessionTimeoutMs));
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        }
        props.putIfAbsent(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        AtomicBoolean closing = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null && !line.strip().equals("close")) {
                    // only "close" means anything
                }
            } catch (IOException e) {
                // a broken stdin is a close too
            }
            closing.set(true);
        }, "stdin");
        stdin.setDaemon(true);
        stdin.start();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
                    // The consumer protocol revokes without a following assignment: report what is left.
                    if (consumerProtocol && !revoked.isEmpty()) {
                        ObjectNode event = JSON.createObjectNode().put("event", "assigned");
                        ArrayNode parts = event.putArray("partitions");
                        consumer.assignment().stream().filter(tp -> !revoked.contains(tp)).map(TopicPartition::partition).sorted().forEach(parts::add);
                        emit(event);
                    }
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> newly) {
                    // The whole assignment, also under a cooperative assignor's incremental callbacks.
                    ObjectNode event = JSON.createObjectNode().put("event", "assigned");
                    ArrayNode parts = event.putArray("partitions");
                    consumer.assignment().stream().map(TopicPartition::partition).sorted().forEach(parts::add);
                    emit(event);
                }
            });
            while (!closing.get()) {
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
                if (got.isEmpty()) {
                    continue;
                }
                try {
                    consumer.commitSync(timeout);
                } catch (CommitFailedException | RebalanceInProgressException | StaleMemberEpochException e) {
                    // A rebalance took the partitions, and their next owner reads these again; those
                    // this member kept it reads again itself.
                    Map<TopicPartition, Long> first = new HashMap<>();
                    got.forEach(r -> first.putIfAbsent(new TopicPartition(r.topic(), r.partition()), r.offset()));
                    first.forEach((tp, offset) -> {
                        if (consumer.assignment().contains(tp)) {
                            consumer.seek(tp, offset);
                        }
                    });
                    continue;
                }
                ObjectNode event = JSON.createObjectNode().put("event", "records");
                ArrayNode rows = event.putArray("records");
                for (ConsumerRecord<String, String> r : got) {
                    rows.addArray().add(r.partition()).add(r.offset()).add(r.key()).add(r.value());
                }
                emit(event);
            }
        }
    }

    private static void emit(ObjectNode event) {
        try {
            System.out.println(JSON.writeValueAsString(event));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        System.out.flush();
    }

    private static void putRecords(ObjectNode out, List<ConsumerRecord<String, String>> got) {
        got.sort(Comparator.comparingInt((ConsumerRecord<String, String> r) -> r.partition())
                .thenComparingLong(ConsumerRecord::offset));
        ArrayNode records = out.putArray("records");
        for (ConsumerRecord<String, String> rec : got) {
            ObjectNode r = records.addObject();
            r.put("partition", rec.partition());
            r.put("offset", rec.offset());
            r.put("timestamp", rec.timestamp());
            r.put("timestamp_type", rec.timestampType().name);
            r.put("key", rec.key());
            r.put("value", rec.value());
            ArrayNode headers = r.putArray("headers");
            for (Header h : rec.headers()) {
                headers.addArray().add(h.key()).add(h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8));
            }
        }
    }

    private static boolean caughtUp(KafkaConsumer<?, ?> consumer, Map<TopicPartition, Long> end) {
        return end.entrySet().stream().allMatch(e -> consumer.position(e.getKey()) >= e.getValue());
    }

    private interface AdminCall {
        Object run() throws Exception;
    }

    private interface Read<T> {
        T get() throws Exception;
    }

    /** As compat.drivers.ADMIN_SETTLES_WITHIN. */
    private static final Duration ADMIN_SETTLES_WITHIN = Duration.ofSeconds(5);

    /**
     * What {@code read} returns once {@code shown} holds of it, or after ADMIN_SETTLES_WITHIN as it
     * is then, its error included (as compat.drivers.once_shown): Kafka's broker applies a
     * creation, an alter or a partition growth when it replays the controller's record, a moment
     * after answering, and until then may not know the topic at all.
     */
    private static <T> T onceShown(Read<T> read, java.util.function.Predicate<T> shown) throws Exception {
        long deadline = System.nanoTime() + ADMIN_SETTLES_WITHIN.toNanos();
        while (true) {
            boolean last = System.nanoTime() >= deadline;
            try {
                T answer = read.get();
                if (last || shown.test(answer)) {
                    return answer;
                }
            } catch (Exception e) {
                if (last) {
                    throw e;
                }
            }
            Thread.sleep(100);
        }
    }

    /** One admin call as {"ok": true, "result": ...} or its error, so one refusal hides no other call. */
    private static void call(ObjectNode out, String name, AdminCall fn) {
        ObjectNode node = out.putObject(name);
        try {
            node.set("result", JSON.valueToTree(fn.run()));
            node.put("ok", true);
        } catch (Exception e) {
            node.put("ok", false);
            putError(node, e);
        }
    }

    private <T> T get(org.apache.kafka.common.KafkaFuture<T> future) throws Exception {
        return future.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /**
     * The admin calls Kafka's tools make, on the topic (and {@code --group} if given), reads first,
     * then the changes, each re-read: cluster, topics, configs, offsets, groups, then
     * IncrementalAlterConfigs, CreatePartitions, DeleteRecords and DeleteTopics.
     */
    private void admin(ObjectNode out) throws Exception {
        ObjectNode calls = out.putObject("calls");
        try (Admin admin = Admin.create(config())) {
            call(calls, "describeCluster", () -> {
                DescribeClusterResult cluster = admin.describeCluster();
                Map<String, Object> r = new TreeMap<>();
                r.put("cluster_id", get(cluster.clusterId()));
                r.put("controller", nodeMap(get(cluster.controller())));
                r.put("nodes", get(cluster.nodes()).stream().map(Driver::nodeMap).toList());
                return r;
            });
            call(calls, "listTopics", () -> new TreeSet<>(get(admin.listTopics().names())).contains(topic));
            call(calls, "describeTopics", () -> describeTopic(admin));
            call(calls, "describeConfigs", () -> describeConfigs(admin));
            call(calls, "listOffsets", () -> listOffsets(admin));
            call(calls, "listConsumerGroups", () -> {
                TreeSet<String> ids = new TreeSet<>();
                for (GroupListing g : get(admin.listGroups().all())) {
                    ids.add(g.groupId());
                }
                return group == null ? ids : ids.contains(group);
            });
            if (group != null) {
                call(calls, "describeConsumerGroups", () -> describeGroup(admin));
                call(calls, "listConsumerGroupOffsets", () -> groupOffsets(admin));
            }
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            call(calls, "incrementalAlterConfigs", () -> {
                AlterConfigOp set = new AlterConfigOp(new ConfigEntry("retention.ms", "123456789"), AlterConfigOp.OpType.SET);
                get(admin.incrementalAlterConfigs(Map.of(resource, List.of(set))).all());
                ConfigEntry entry = onceShown(() -> get(admin.describeConfigs(List.of(resource)).all()).get(resource).get("retention.ms"),
                        e -> e != null && "123456789".equals(e.value()));
                return configMap(entry);
            });
            call(calls, "createPartitions", () -> {
                get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(partitions + 1))).all());
                return onceShown(() -> get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size(),
                        size -> size == partitions + 1);
            });
            call(calls, "deleteRecords", () -> {
                TopicPartition p0 = new TopicPartition(topic, 0);
                return get(admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(1))).lowWatermarks().get(p0)).lowWatermark();
            });
            call(calls, "deleteTopics", () -> {
                get(admin.deleteTopics(List.of(topic)).all());
                return onceShown(() -> get(admin.listTopics().names()).contains(topic), listed -> !listed);
            });
        }
    }

    /**
     * The matrix's admin plan (compat/drivers/__init__.py, action "admin"): create with {@code -t}
     * configs, describe them, alter retention.ms ({@code -p altered_retention}) incrementally,
     * describe again, grow to {@code --partitions}, write {@code --count} records to partition 0,
     * delete below {@code -p delete_before}, describe the cluster, commit {@code -p committed} for
     * group T-admin, then list, describe and delete that group.
     */
    private void adminPlan(ObjectNode out, Map<String, String> plan) throws Exception {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        TopicPartition p0 = new TopicPartition(topic, 0);
        String planGroup = topic + "-admin";
        try (Admin admin = Admin.create(config())) {
            get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(topicConfigs))).all());
            ObjectNode configs = out.putObject("configs");
            planConfigs(admin, resource, configs.putObject("created"), topicConfigs);
            ConfigEntry retention = new ConfigEntry("retention.ms", plan.get("altered_retention"));
            get(admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(retention, AlterConfigOp.OpType.SET)))).all());
            planConfigs(admin, resource, configs.putObject("altered"), Map.of("retention.ms", plan.get("altered_retention")));
            get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(partitions))).all());
            out.put("partitions", (int) onceShown(() -> get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size(),
                    size -> size == partitions));
            Properties props = config();
            props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
                for (int i = 0; i < count; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
                }
            }
            RecordsToDelete below = RecordsToDelete.beforeOffset(Long.parseLong(plan.get("delete_before")));
            out.put("low_watermark", get(admin.deleteRecords(Map.of(p0, below)).lowWatermarks().get(p0)).lowWatermark());
            DescribeClusterResult cluster = admin.describeCluster();
            ArrayNode brokers = out.putArray("brokers");
            get(cluster.nodes()).stream().map(Node::id).sorted().forEach(brokers::add);
            out.put("controller", get(cluster.controller()).id());
            OffsetAndMetadata commit = new OffsetAndMetadata(Long.parseLong(plan.get("committed")));
            get(admin.alterConsumerGroupOffsets(planGroup, Map.of(p0, commit)).all());
            ObjectNode groupOut = out.putObject("group");
            groupOut.put("listed", groupIds(admin).contains(planGroup));
            groupOut.put("state", get(admin.describeConsumerGroups(List.of(planGroup)).all()).get(planGroup).groupState().toString());
            get(admin.deleteConsumerGroups(List.of(planGroup)).all());
            groupOut.put("deleted", !groupIds(admin).contains(planGroup));
        }
    }

    /** The topic's {@code topicConfigs} as described once it shows {@code expected}'s values. */
    private void planConfigs(Admin admin, ConfigResource resource, ObjectNode out, Map<String, String> expected) throws Exception {
        Config described = onceShown(() -> get(admin.describeConfigs(List.of(resource)).all()).get(resource),
                config -> expected.entrySet().stream().allMatch(e -> config.get(e.getKey()) != null
                        && e.getValue().equals(config.get(e.getKey()).value())));
        for (String name : topicConfigs.keySet()) {
            ConfigEntry e = described.get(name);
            out.putArray(name).add(e.value()).add(e.source().name());
        }
    }

    private TreeSet<String> groupIds(Admin admin) throws Exception {
        TreeSet<String> ids = new TreeSet<>();
        for (GroupListing g : get(admin.listGroups().all())) {
            ids.add(g.groupId());
        }
        return ids;
    }

    private static Map<String, Object> nodeMap(Node node) {
        if (node == null) {
            return null;
        }
        Map<String, Object> r = new TreeMap<>();
        r.put("id", node.id());
        r.put("host", node.host());
        r.put("port", node.port());
        r.put("rack", node.rack());
        return r;
    }

    private Map<String, Object> describeTopic(Admin admin) throws Exception {
        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        Map<String, Object> r = new TreeMap<>();
        r.put("name", d.name());
        r.put("internal", d.isInternal());
        r.put("topic_id_set", d.topicId() != null && !d.topicId().equals(org.apache.kafka.common.Uuid.ZERO_UUID));
        List<Map<String, Object>> parts = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) {
            Map<String, Object> m = new TreeMap<>();
            m.put("partition", p.partition());
            m.put("leader", nodeMap(p.leader()));
            m.put("replicas", p.replicas().stream().map(Node::id).toList());
            m.put("isr", p.isr().stream().map(Node::id).toList());
            parts.add(m);
        }
        r.put("partitions", parts);
        return r;
    }

    private Map<String, Object> describeConfigs(Admin admin) throws Exception {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config config = get(admin.describeConfigs(List.of(resource)).all()).get(resource);
        Map<String, Object> r = new TreeMap<>();
        for (ConfigEntry e : config.entries()) {
            r.put(e.name(), configMap(e));
        }
        return r;
    }

    private static Map<String, Object> configMap(ConfigEntry e) {
        Map<String, Object> m = new TreeMap<>();
        m.put("value", e.value());
        m.put("source", e.source().name());
        m.put("read_only", e.isReadOnly());
        m.put("sensitive", e.isSensitive());
        m.put("type", e.type().name());
        return m;
    }

    private Map<String, Object> listOffsets(Admin admin) throws Exception {
        Map<String, OffsetSpec> specs = Map.of(
                "earliest", OffsetSpec.earliest(), "latest", OffsetSpec.latest(), "max_timestamp", OffsetSpec.maxTimestamp());
        Map<String, Object> r = new TreeMap<>();
        for (Map.Entry<String, OffsetSpec> spec : specs.entrySet()) {
            Map<TopicPartition, OffsetSpec> request = new HashMap<>();
            for (int p = 0; p < partitions; p++) {
                request.put(new TopicPartition(topic, p), spec.getValue());
            }
            Map<String, Long> offsets = new TreeMap<>();
            get(admin.listOffsets(request).all()).forEach((tp, info) -> offsets.put(Integer.toString(tp.partition()), info.offset()));
            r.put(spec.getKey(), offsets);
        }
        return r;
    }

    private Map<String, Object> describeGroup(Admin admin) throws Exception {
        ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
        Map<String, Object> r = new TreeMap<>();
        r.put("state", d.groupState().toString());
        r.put("type", d.type().toString());
        r.put("simple", d.isSimpleConsumerGroup());
        r.put("assignor", d.partitionAssignor());
        List<List<Integer>> members = new ArrayList<>();
        for (MemberDescription m : d.members()) {
            members.add(m.assignment().topicPartitions().stream().map(TopicPartition::partition).sorted().toList());
        }
        r.put("member_assignments", members);
        return r;
    }

    private Map<String, Long> groupOffsets(Admin admin) throws Exception {
        Map<String, Long> r = new TreeMap<>();
        get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata())
                .forEach((tp, om) -> r.put(tp.topic() + "-" + tp.partition(), om == null ? null : om.offset()));
        return r;
    }
}
