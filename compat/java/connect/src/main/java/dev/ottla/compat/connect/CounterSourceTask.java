package dev.ottla.compat.connect;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;
import org.apache.kafka.connect.source.TransactionContext;

/**
 * Emits the next numbers of 0..count-1, each with the source offset {@code next} = number + 1, so
 * a restart resumes after the last offset the worker committed. Idle once all are written.
 */
public final class CounterSourceTask extends SourceTask {
    private static final Map<String, String> PARTITION = Map.of("counter", "0");

    private String topic;
    private long count;
    private int batch;
    private long intervalMs;
    private int transactionRecords;
    private long next;
    private TransactionContext transactions;

    @Override
    public void start(Map<String, String> props) {
        AbstractConfig config = new AbstractConfig(CounterSourceConnector.CONFIG, props);
        topic = config.getString(CounterSourceConnector.TOPIC);
        count = config.getLong(CounterSourceConnector.COUNT);
        batch = config.getInt(CounterSourceConnector.BATCH);
        intervalMs = config.getLong(CounterSourceConnector.INTERVAL_MS);
        transactionRecords = config.getInt(CounterSourceConnector.TRANSACTION_RECORDS);
        // Null unless exactly-once is on and transaction.boundary=connector.
        transactions = context.transactionContext();
        Map<String, Object> offset = context.offsetStorageReader().offset(PARTITION);
        next = offset == null ? 0 : ((Number) offset.get("next")).longValue();
    }

    @Override
    public List<SourceRecord> poll() throws InterruptedException {
        Thread.sleep(intervalMs);
        List<SourceRecord> records = new ArrayList<>();
        for (int i = 0; i < batch && next < count; i++, next++) {
            SourceRecord record = new SourceRecord(PARTITION, Map.of("next", next + 1), topic, null,
                    Schema.STRING_SCHEMA, Long.toString(next), Schema.INT64_SCHEMA, next);
            records.add(record);
            if (transactions != null && ((next + 1) % transactionRecords == 0 || next + 1 == count)) {
                transactions.commitTransaction(record);
            }
        }
        return records.isEmpty() ? null : records;
    }

    @Override
    public void stop() {}

    @Override
    public String version() {
        return "1.0";
    }
}
