package dev.ottla.compat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Runs one client action against any broker and prints one JSON object on stdout.
 *
 * <p>Usage: {@code Driver <bootstrap> <topic> <action> [--partitions N] [--count N]
 * [--timeout-ms N] [-c key=value]...} with action one of {@code create-topic}, {@code produce},
 * {@code consume}. {@code -c} passes a client config through unchanged, so a scenario can turn on
 * idempotence, compression or acks without a new action.
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
    private final Properties extra;

    private Driver(String bootstrap, String topic, int partitions, int count, Duration timeout, Properties extra) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.partitions = partitions;
        this.count = count;
        this.timeout = timeout;
        this.extra = extra;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            usage("expected <bootstrap> <topic> <action>");
        }
        int partitions = 1;
        int count = 10;
        long timeoutMs = 30_000;
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
                case "-c" -> {
                    int eq = value.indexOf('=');
                    if (eq < 1) {
                        usage("-c wants key=value, got " + value);
                    }
                    extra.setProperty(value.substring(0, eq), value.substring(eq + 1));
                }
                default -> usage("unknown option " + args[i]);
            }
        }
        Driver driver = new Driver(args[0], args[1], partitions, count, Duration.ofMillis(timeoutMs), extra);
        ObjectNode out = JSON.createObjectNode();
        out.put("action", args[2]);
        out.put("topic", args[1]);
        int status = 0;
        try {
            switch (args[2]) {
                case "create-topic" -> driver.createTopic(out);
                case "produce" -> driver.produce(out);
                case "consume" -> driver.consume(out);
                default -> usage("unknown action " + args[2]);
            }
            out.put("ok", true);
        } catch (Exception e) {
            // Futures wrap the broker's error; the diff wants the Kafka exception itself.
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            out.put("ok", false);
            out.put("error", cause.getClass().getSimpleName());
            out.put("message", cause.getMessage());
            status = 1;
        }
        System.out.println(JSON.writeValueAsString(out));
        System.exit(status);
    }

    private static void usage(String why) {
        System.err.println("usage: Driver <bootstrap> <topic> create-topic|produce|consume"
                + " [--partitions N] [--count N] [--timeout-ms N] [-c key=value]...");
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
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all()
                    .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        }
        out.put("partitions", partitions);
    }

    private void produce(ObjectNode out) throws Exception {
        Properties props = config();
        props.putIfAbsent(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.putIfAbsent(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<Future<RecordMetadata>> sent = new ArrayList<>(count);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < count; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
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

    /** Reads every partition from its start to the end offset seen at start, by assignment: no group. */
    private void consume(ObjectNode out) throws Exception {
        Properties props = config();
        props.putIfAbsent(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.putIfAbsent(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.putIfAbsent(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, timeout);
            List<TopicPartition> tps = infos.stream().map(p -> new TopicPartition(p.topic(), p.partition())).toList();
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
}
