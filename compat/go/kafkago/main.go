// The segmentio/kafka-go driver (contract in compat/drivers/__init__.py).
//
// It uses kafka-go's request-level kafka.Client, which says where each produced batch went,
// and its Reader (one partition, no group) and ConsumerGroup types for reading. kafka-go has
// no idempotent or transactional producer, no group.instance.id and no DeleteRecords API,
// so those actions are not offered.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/ottla/compat/go/driver"
)

func newClient(args *driver.Args) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(args.Brokers()...), Timeout: args.Timeout,
		Transport: &kafka.Transport{TLS: args.TLS, SASL: mechanism(args)}}
}

// newDialer is how a Reader or ConsumerGroup connects: TLS and SASL as --security says.
func newDialer(args *driver.Args) *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: args.TLS, SASLMechanism: mechanism(args)}
}

func mechanism(args *driver.Args) sasl.Mechanism {
	security := args.Security
	if security == nil || !security.SASL() {
		return nil
	}
	var algorithm scram.Algorithm
	switch *security.Mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: *security.Username, Password: *security.Password}
	case "SCRAM-SHA-512":
		algorithm = scram.SHA512
	case "SCRAM-SHA-256":
		algorithm = scram.SHA256
	default:
		panic(fmt.Sprintf("unknown SASL mechanism %s", *security.Mechanism))
	}
	m, err := scram.Mechanism(algorithm, *security.Username, *security.Password)
	if err != nil {
		panic(err) // only for an illegal username or password (SASLprep)
	}
	return m
}

func createTopic(ctx context.Context, client *kafka.Client, topic string, partitions int) error {
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		return err
	}
	return resp.Errors[topic]
}

func create(args *driver.Args) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), args.Timeout)
	defer cancel()
	if err := createTopic(ctx, newClient(args), args.Topic, args.Partitions); err != nil {
		return nil, err
	}
	return map[string]bool{"created": true}, nil
}

func partitions(ctx context.Context, client *kafka.Client, topic string) ([]int, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata for %s: %v", topic, meta.Topics)
	}
	ids := []int{}
	for _, p := range meta.Topics[0].Partitions {
		ids = append(ids, p.ID)
	}
	sort.Ints(ids)
	return ids, nil
}

// produceTo sends records i in indexes (k{i}/v{i}) to one partition in one Produce request
// and returns the offset of the first.
func produceTo(ctx context.Context, client *kafka.Client, topic string, partition int, indexes []int, compression kafka.Compression) (int64, error) {
	// kafka.Client sends one request and returns what the broker said: a retriable error (a
	// fresh topic's leader not yet known, say) or a dropped connection (a leader that stopped)
	// is retried here, as kafka-go's Writer would (error.go's isTemporary, isTransientNetworkError),
	// for 30 s: the Transport finds a moved leader once it refreshes its metadata (a 6 s TTL),
	// which on a loaded machine took over 10 s.
	for attempt := 1; ; attempt++ {
		// Each attempt builds its records afresh: a kafka.Bytes is a reader, empty once sent.
		records := make([]kafka.Record, len(indexes))
		for n, i := range indexes {
			records[n] = kafka.Record{Key: kafka.NewBytes([]byte(driver.Key(i))), Value: kafka.NewBytes([]byte(driver.Value(i)))}
		}
		resp, err := client.Produce(ctx, &kafka.ProduceRequest{
			Topic: topic, Partition: partition, RequiredAcks: kafka.RequireAll,
			Records: kafka.NewRecordReader(records...), Compression: compression,
		})
		if err == nil {
			err = resp.Error
		}
		var kafkaErr kafka.Error
		if err == nil {
			return resp.BaseOffset, nil
		} else if !(errors.As(err, &kafkaErr) && kafkaErr.Temporary() || transientNetworkError(err)) || attempt == 120 {
			return 0, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// transientNetworkError is kafka-go's own test (error.go) of an error its Writer retries.
func transientNetworkError(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func produce(args *driver.Args) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), args.Timeout)
	defer cancel()
	client := newClient(args)
	ids, err := partitions(ctx, client, args.Topic)
	if err != nil {
		return nil, err
	}
	balancer := kafka.Murmur2Balancer{}
	byPartition := map[int][]int{}
	for i := range args.Count {
		p := balancer.Balance(kafka.Message{Key: []byte(driver.Key(i))}, ids...)
		byPartition[p] = append(byPartition[p], i)
	}
	delivered := make([][]any, args.Count)
	for p, indexes := range byPartition {
		base, err := produceTo(ctx, client, args.Topic, p, indexes, 0)
		if err != nil {
			return nil, err
		}
		for n, i := range indexes {
			delivered[i] = []any{driver.Key(i), p, base + int64(n)}
		}
	}
	return map[string]any{"produced": args.Count, "delivered": delivered}, nil
}

// readPartition reads one partition by assignment from its earliest offset up to the end
// offset listed when the read begins.
// endOffset is the partition's log end offset. kafka-go reports a partition's error beside a
// LastOffset of 0: a leader that moved since the client's metadata (a broker of a cluster
// restarted) answers NOT_LEADER_OR_FOLLOWER, which is no end offset, so a retriable error is
// asked again, until the context's deadline, once the client's metadata has followed.
func endOffset(ctx context.Context, client *kafka.Client, topic string, partition int) (int64, error) {
	for {
		listed, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
			Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(partition)}},
		})
		if err != nil {
			return 0, err
		}
		answer := listed.Topics[topic][0]
		if answer.Error == nil {
			return answer.LastOffset, nil
		}
		var kafkaError kafka.Error
		if !errors.As(answer.Error, &kafkaError) || !kafkaError.Temporary() {
			return 0, fmt.Errorf("partition %d: ListOffsets: %w", partition, answer.Error)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("partition %d: ListOffsets: %w", partition, answer.Error)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readPartition(ctx context.Context, args *driver.Args, client *kafka.Client, topic string, partition int) ([]driver.Record, error) {
	end, err := endOffset(ctx, client, topic, partition)
	if err != nil {
		return nil, err
	}
	records := []driver.Record{}
	if end == 0 {
		return records, nil
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: args.Brokers(), Topic: topic, Partition: partition, MaxWait: 500 * time.Millisecond, Dialer: newDialer(args),
	})
	defer reader.Close()
	if err := reader.SetOffset(kafka.FirstOffset); err != nil {
		return nil, err
	}
	for {
		m, err := reader.ReadMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("partition %d: read stopped before end offset %d: %w", partition, end, err)
		}
		records = append(records, driver.Record{m.Partition, m.Offset, string(m.Key), string(m.Value)})
		if m.Offset >= end-1 {
			return records, nil
		}
	}
}

func consume(args *driver.Args) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), args.Timeout)
	defer cancel()
	client := newClient(args)
	ids, err := partitions(ctx, client, args.Topic)
	if err != nil {
		return nil, err
	}
	records := []driver.Record{}
	for _, p := range ids {
		read, err := readPartition(ctx, args, client, args.Topic, p)
		if err != nil {
			return nil, err
		}
		records = append(records, read...)
	}
	return map[string]any{"partitions": len(ids), "records": records}, nil
}

// member reads each generation's assignment through a Reader per partition, committing each
// record through the generation before reporting it.
func member(args *driver.Args) (any, error) {
	closing := driver.CloseRequested()
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: args.Group, Brokers: args.Brokers(), Topics: []string{args.Topic},
		HeartbeatInterval: time.Second, SessionTimeout: time.Duration(args.SessionTimeoutMs) * time.Millisecond,
		StartOffset: kafka.FirstOffset, Dialer: newDialer(args),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			generation, err := group.Next(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
					return
				}
				// As kafka-go's own Reader does (reader.go): log and try the next generation,
				// e.g. while a fresh Kafka has no coordinator yet.
				fmt.Fprintf(os.Stderr, "generation: %v\n", err)
				continue
			}
			assigned := []int{}
			offsets := map[int]int64{}
			for _, a := range generation.Assignments[args.Topic] {
				assigned = append(assigned, a.ID)
				offsets[a.ID] = a.Offset
			}
			sort.Ints(assigned)
			driver.Emit(map[string]any{"event": "assigned", "partitions": assigned})
			for _, p := range assigned {
				generation.Start(func(ctx context.Context) { readAssigned(ctx, args, generation, p, offsets[p]) })
			}
		}
	}()
	<-closing
	cancel()
	closeErr := group.Close()
	wg.Wait()
	if closeErr != nil {
		return nil, closeErr
	}
	return map[string]bool{"closed": true}, nil
}

func readAssigned(ctx context.Context, args *driver.Args, generation *kafka.Generation, partition int, offset int64) {
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: args.Brokers(), Topic: args.Topic, Partition: partition, MaxWait: 500 * time.Millisecond, Dialer: newDialer(args),
	})
	defer reader.Close()
	if err := reader.SetOffset(offset); err != nil {
		return
	}
	for {
		m, err := reader.ReadMessage(ctx)
		if err != nil {
			return // the generation ended: the partition's next owner reads on from the commit
		}
		if err := generation.CommitOffsets(map[string]map[int]int64{args.Topic: {partition: m.Offset + 1}}); err != nil {
			return
		}
		driver.Emit(map[string]any{"event": "records", "records": []driver.Record{{m.Partition, m.Offset, string(m.Key), string(m.Value)}}})
	}
}

var compressions = map[string]kafka.Compression{"gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd}

func codecs(args *driver.Args) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), args.Timeout)
	defer cancel()
	client := newClient(args)
	indexes := make([]int, args.Count)
	for i := range indexes {
		indexes[i] = i
	}
	results := map[string][]driver.Record{}
	for _, name := range driver.Codecs {
		// kafka.Client's Metadata never asks the broker to create a topic: create it here.
		topic := args.Topic + "-" + name
		if err := createTopic(ctx, client, topic, 1); err != nil {
			return nil, err
		}
		if _, err := produceTo(ctx, client, topic, 0, indexes, compressions[name]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		read, err := readPartition(ctx, args, client, topic, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		results[name] = read
	}
	return map[string]any{"codecs": results, "unavailable": map[string]string{}}, nil
}

func main() {
	driver.Main(map[string]driver.Action{
		"create": create, "produce": produce, "consume": consume, "member": member, "codecs": codecs,
	})
}
