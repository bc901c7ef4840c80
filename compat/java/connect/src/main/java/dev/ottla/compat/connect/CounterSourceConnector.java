package dev.ottla.compat.connect;

import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.source.ConnectorTransactionBoundaries;
import org.apache.kafka.connect.source.ExactlyOnceSupport;
import org.apache.kafka.connect.source.SourceConnector;

/**
 * A source of the numbers 0..count-1 into one topic, one task, resumable from its source offset.
 *
 * <p>It supports exactly-once delivery (KIP-618): its offsets say exactly which numbers were
 * written, so a task restarted from the last committed offset neither skips nor repeats one; and
 * it can define its own transaction boundaries ({@code transaction.boundary=connector}), one
 * transaction per {@code transaction.records} numbers.
 */
public final class CounterSourceConnector extends SourceConnector {
    static final String TOPIC = "topic";
    static final String COUNT = "count";
    static final String BATCH = "batch.records";
    static final String INTERVAL_MS = "poll.interval.ms";
    static final String TRANSACTION_RECORDS = "transaction.records";

    static final ConfigDef CONFIG = new ConfigDef()
            .define(TOPIC, ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "Topic the numbers go to.")
            .define(COUNT, ConfigDef.Type.LONG, ConfigDef.Importance.HIGH, "How many numbers: 0..count-1.")
            .define(BATCH, ConfigDef.Type.INT, 10, ConfigDef.Importance.LOW, "Numbers per poll().")
            .define(INTERVAL_MS, ConfigDef.Type.LONG, 100L, ConfigDef.Importance.LOW, "Pause before each poll().")
            .define(TRANSACTION_RECORDS, ConfigDef.Type.INT, 25, ConfigDef.Importance.LOW,
                    "Numbers per transaction when the connector defines the boundaries.");

    private Map<String, String> props;

    @Override
    public void start(Map<String, String> props) {
        this.props = props;
    }

    @Override
    public Class<? extends Task> taskClass() {
        return CounterSourceTask.class;
    }

    /** One task whatever tasks.max says: the numbers are one ordered sequence. */
    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        return List.of(props);
    }

    @Override
    public void stop() {}

    @Override
    public ConfigDef config() {
        return CONFIG;
    }

    @Override
    public String version() {
        return "1.0";
    }

    @Override
    public ExactlyOnceSupport exactlyOnceSupport(Map<String, String> connectorConfig) {
        return ExactlyOnceSupport.SUPPORTED;
    }

    @Override
    public ConnectorTransactionBoundaries canDefineTransactionBoundaries(Map<String, String> connectorConfig) {
        return ConnectorTransactionBoundaries.SUPPORTED;
    }
}
