package dev.ottla.compat.streams;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Two Kafka Streams applications, run until SIGTERM (which closes them cleanly) or SIGKILL.
 *
 * <p>Usage: {@code App wordcount|eos-count key=value...}. The keys {@code input} and {@code output}
 * name the topics; {@code changelog.<config>} keys go to the store's changelog topic; every other
 * key is a StreamsConfig setting passed as is.
 *
 * <ul>
 *   <li>{@code wordcount}: Kafka's WordCountDemo: lines split into lower-case words, grouped by
 *       word (a repartition), counted in store {@code counts}; each count update goes to output.
 *   <li>{@code eos-count}: values are user names keyed by an event id; regrouped by user (a
 *       repartition on a new key) and counted in store {@code user-counts}; each update goes to
 *       output. Meant for {@code processing.guarantee=exactly_once_v2} and a store cache of 0, so
 *       every input record makes exactly one committed changelog and output record.
 * </ul>
 *
 * <p>Prints {@code RUNNING} on stdout once the application reaches that state, so a runner knows
 * when its input will be picked up.
 */
public final class App {
    private App() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 1) {
            System.err.println("usage: App wordcount|eos-count key=value...");
            System.exit(2);
        }
        Map<String, String> settings = new HashMap<>();
        for (String arg : Arrays.copyOfRange(args, 1, args.length)) {
            int eq = arg.indexOf('=');
            if (eq < 0) {
                System.err.println("not key=value: " + arg);
                System.exit(2);
            }
            settings.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        String input = settings.remove("input");
        String output = settings.remove("output");
        Map<String, String> changelogConfig = new HashMap<>();
        Properties props = new Properties();
        settings.forEach((key, value) -> {
            if (key.startsWith("changelog.")) {
                changelogConfig.put(key.substring("changelog.".length()), value);
            } else {
                props.put(key, value);
            }
        });
        props.putIfAbsent(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.putIfAbsent(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);

        Topology topology = switch (args[0]) {
            case "wordcount" -> wordCount(input, output, changelogConfig);
            case "eos-count" -> eosCount(input, output, changelogConfig);
            default -> throw new IllegalArgumentException("unknown application " + args[0]);
        };
        run(topology, props);
    }

    static Topology wordCount(String input, String output, Map<String, String> changelogConfig) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.<String, String>stream(input)
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((key, word) -> !word.isEmpty())
                .groupBy((key, word) -> word)
                .count(store("counts", changelogConfig))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    static Topology eosCount(String input, String output, Map<String, String> changelogConfig) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .map((eventId, user) -> KeyValue.pair(user, eventId))
                .groupByKey(Grouped.with("by-user", Serdes.String(), Serdes.String()))
                .count(store("user-counts", changelogConfig))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    private static Materialized<String, Long, KeyValueStore<Bytes, byte[]>> store(
            String name, Map<String, String> changelogConfig) {
        return Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(name)
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.Long())
                .withLoggingEnabled(changelogConfig);
    }

    private static void run(Topology topology, Properties props) throws InterruptedException {
        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) {
                System.out.println("RUNNING");
                System.out.flush();
            } else if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close();
            stopped.countDown();
        }));
        streams.start();
        stopped.await();
        if (streams.state() == KafkaStreams.State.ERROR) {
            System.exit(1);
        }
    }
}
