package dev.ottla.compat.connect;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.Map;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;

/**
 * Appends each record as one line {@code topic partition offset key value} and syncs the file
 * before the worker commits offsets, so a committed offset is never ahead of what the file holds
 * (at-least-once: a record redelivered after a takeover appears twice, with the same offset).
 */
public final class RecordingSinkTask extends SinkTask {
    private FileOutputStream out;

    @Override
    public void start(Map<String, String> props) {
        try {
            out = new FileOutputStream(props.get(RecordingSinkConnector.FILE), true);
        } catch (IOException e) {
            throw new ConnectException(e);
        }
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        StringBuilder lines = new StringBuilder();
        for (SinkRecord record : records) {
            lines.append(record.topic()).append(' ').append(record.kafkaPartition()).append(' ')
                    .append(record.kafkaOffset()).append(' ').append(record.key()).append(' ')
                    .append(record.value()).append('\n');
        }
        try {
            // One write per batch of whole lines: O_APPEND keeps two tasks' lines from interleaving.
            out.write(lines.toString().getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ConnectException(e);
        }
    }

    @Override
    public void flush(Map<TopicPartition, OffsetAndMetadata> currentOffsets) {
        try {
            out.getFD().sync();
        } catch (IOException e) {
            throw new ConnectException(e);
        }
    }

    @Override
    public void stop() {
        try {
            if (out != null) {
                out.close();
            }
        } catch (IOException e) {
            throw new ConnectException(e);
        }
    }

    @Override
    public String version() {
        return "1.0";
    }
}
