// The IBM/sarama driver (contract in compat/drivers/__init__.py).
//
// Sarama does not negotiate request versions: it sends those of the Kafka version it is
// configured for, here 4.0, the newest release whose protocol Kafka 4.4 and Ottla both serve.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/ottla/compat/go/driver"
)

func newConfig(args *driver.Args) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "compat-sarama"
	cfg.Producer.Return.Successes = true
	cfg.Net.DialTimeout = args.Timeout
	cfg.Net.ReadTimeout = args.Timeout
	cfg.Admin.Timeout = args.Timeout
	// Kafka answers NOT_COORDINATOR for the seconds it takes to create __consumer_offsets (50
	// partitions); sarama's offset manager retries that Metadata.Retry.Max times, by default
	// 3 x 250 ms, which is too short for a fresh Kafka.
	cfg.Metadata.Retry.Max = 20
	cfg.Metadata.Retry.Backoff = 500 * time.Millisecond
	if security := args.Security; security != nil {
		cfg.Net.TLS.Enable = args.TLS != nil
		cfg.Net.TLS.Config = args.TLS
		if security.SASL() {
			cfg.Net.SASL.Enable = true
			cfg.Net.SASL.User = *security.Username
			cfg.Net.SASL.Password = *security.Password
			switch *security.Mechanism {
			case "PLAIN":
				cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
			case "SCRAM-SHA-512":
				cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
				cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
			case "SCRAM-SHA-256":
				cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
				cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
			}
		}
	}
	return cfg
}

// scramClient is sarama's SCRAM conversation on xdg-go/scram, as sarama's own examples wire it
// (sarama leaves the SCRAM implementation to its user).
type scramClient struct {
	hash         scram.HashGeneratorFcn
	conversation *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conversation = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conversation.Step(challenge) }

func (c *scramClient) Done() bool { return c.conversation.Done() }

func newClient(args *driver.Args, cfg *sarama.Config) (sarama.Client, error) {
	return sarama.NewClient(args.Brokers(), cfg)
}

func create(args *driver.Args) (any, error) {
	admin, err := sarama.NewClusterAdmin(args.Brokers(), newConfig(args))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: int32(args.Partitions), ReplicationFactor: 1}
	if err := admin.CreateTopic(args.Topic, detail, false); err != nil {
		return nil, err
	}
	return map[string]bool{"created": true}, nil
}

func messages(topic string, count int, partition int32, value func(int) string) []*sarama.ProducerMessage {
	out := make([]*sarama.ProducerMessage, count)
	for i := range out {
		out[i] = &sarama.ProducerMessage{
			Topic: topic, Partition: partition,
			Key: sarama.StringEncoder(driver.Key(i)), Value: sarama.StringEncoder(value(i)),
		}
	}
	return out
}

func delivered(sent []*sarama.ProducerMessage) [][]any {
	out := make([][]any, len(sent))
	for i, m := range sent {
		out[i] = []any{driver.Key(i), m.Partition, m.Offset}
	}
	return out
}

func produce(args *driver.Args) (any, error) {
	// Stock producer defaults: the hash partitioner, acks=1, no idempotence.
	producer, err := sarama.NewSyncProducer(args.Brokers(), newConfig(args))
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	sent := messages(args.Topic, args.Count, 0, driver.Value)
	if err := producer.SendMessages(sent); err != nil {
		// ProducerErrors says only how many failed; the first one says why (a refusal's name).
		var failed sarama.ProducerErrors
		if errors.As(err, &failed) && len(failed) > 0 {
			return nil, fmt.Errorf("%w: %w", err, failed[0].Err)
		}
		return nil, err
	}
	return map[string]any{"produced": len(sent), "delivered": delivered(sent)}, nil
}

func record(m *sarama.ConsumerMessage) driver.Record {
	return driver.Record{m.Partition, m.Offset, string(m.Key), string(m.Value)}
}

func consume(args *driver.Args) (any, error) {
	client, err := newClient(args, newConfig(args))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	partitions, err := client.Partitions(args.Topic)
	if err != nil {
		return nil, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	records := []driver.Record{}
	for _, p := range partitions {
		end, err := client.GetOffset(args.Topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(args.Topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		deadline := time.After(args.Timeout)
	read:
		for {
			select {
			case m := <-pc.Messages():
				records = append(records, record(m))
				if m.Offset >= end-1 {
					break read
				}
			case <-deadline:
				pc.Close()
				return nil, fmt.Errorf("partition %d: read stalled before end offset %d", p, end)
			}
		}
		pc.Close()
	}
	return map[string]any{"partitions": len(partitions), "records": records}, nil
}

// readUntilIdle reads partition 0 of topic from the earliest offset until nothing comes for 3 s.
func readUntilIdle(args *driver.Args, topic string, isolation sarama.IsolationLevel) ([]driver.Record, error) {
	cfg := newConfig(args)
	cfg.Consumer.IsolationLevel = isolation
	consumer, err := sarama.NewConsumer(args.Brokers(), cfg)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	records := []driver.Record{}
	for {
		select {
		case m := <-pc.Messages():
			records = append(records, record(m))
		case <-time.After(3 * time.Second):
			return records, nil
		}
	}
}

// member is a consumer-group member whose handler reports each assignment and each batch
// it has read and committed.
type member struct{ topic string }

func (h member) Setup(session sarama.ConsumerGroupSession) error {
	partitions := append([]int32{}, session.Claims()[h.topic]...)
	sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
	driver.Emit(map[string]any{"event": "assigned", "partitions": partitions})
	return nil
}

func (member) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (member) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		batch := []*sarama.ConsumerMessage{m}
	drain:
		for len(batch) < 500 {
			select {
			case more, ok := <-claim.Messages():
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		records := make([]driver.Record, len(batch))
		for i, m := range batch {
			session.MarkMessage(m, "")
			records[i] = record(m)
		}
		session.Commit()
		if session.Context().Err() != nil {
			return nil // a rebalance took the partition: its next owner reads these again
		}
		driver.Emit(map[string]any{"event": "records", "records": records})
	}
	return nil
}

func runMember(args *driver.Args) (any, error) {
	closing := driver.CloseRequested()
	cfg := newConfig(args)
	cfg.Consumer.Group.Session.Timeout = time.Duration(args.SessionTimeoutMs) * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	cfg.Consumer.Group.InstanceId = args.InstanceID
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	group, err := sarama.NewConsumerGroup(args.Brokers(), args.Group, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var consumeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{args.Topic}, member{args.Topic}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				consumeErr = err
				cancel()
			}
		}
	}()
	go func() {
		for err := range group.Errors() {
			fmt.Fprintf(os.Stderr, "group error: %v\n", err)
		}
	}()
	select {
	case <-closing:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if err := group.Close(); err != nil {
		return nil, err
	}
	if consumeErr != nil {
		return nil, consumeErr
	}
	return map[string]bool{"closed": true}, nil
}

// kafkaSource names a config's source as Kafka does (sarama has names of its own).
func kafkaSource(source sarama.ConfigSource) string {
	switch source {
	case sarama.SourceTopic:
		return "DYNAMIC_TOPIC_CONFIG"
	case sarama.SourceDynamicBroker:
		return "DYNAMIC_BROKER_CONFIG"
	case sarama.SourceDynamicDefaultBroker:
		return "DYNAMIC_DEFAULT_BROKER_CONFIG"
	case sarama.SourceStaticBroker:
		return "STATIC_BROKER_CONFIG"
	case sarama.SourceDefault:
		return "DEFAULT_CONFIG"
	}
	return "UNKNOWN"
}

// adminSettlesWithin is compat.drivers.ADMIN_SETTLES_WITHIN.
const adminSettlesWithin = 5 * time.Second

func admin(args *driver.Args) (any, error) {
	cfg := newConfig(args)
	client, err := newClient(args, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, err
	}
	configs := map[string]*string{}
	for name, value := range driver.AdminConfigs {
		configs[name] = &value
	}
	detail := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: configs}
	if err := admin.CreateTopic(args.Topic, detail, false); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	describe := func() (map[string][]string, error) {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: args.Topic})
		if err != nil {
			return nil, err
		}
		out := map[string][]string{}
		for _, entry := range entries {
			if _, ok := driver.AdminConfigs[entry.Name]; ok {
				out[entry.Name] = []string{entry.Value, kafkaSource(entry.Source)}
			}
		}
		return out, nil
	}
	created, err := describe()
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	retention := driver.AdminAlteredRetention
	change := map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &retention}}
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, args.Topic, change, false); err != nil {
		return nil, fmt.Errorf("alter: %w", err)
	}
	// As compat.drivers.once_shown: Kafka applies an alter or a partition growth when its broker
	// replays the controller's record, a moment after answering; describe until it shows, a while.
	settled := time.Now().Add(adminSettlesWithin)
	altered, err := describe()
	for ; err == nil && altered["retention.ms"][0] != driver.AdminAlteredRetention && time.Now().Before(settled); altered, err = describe() {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("describe after alter: %w", err)
	}
	if err := admin.CreatePartitions(args.Topic, driver.AdminPartitions, nil, false); err != nil {
		return nil, fmt.Errorf("create partitions: %w", err)
	}
	settled = time.Now().Add(adminSettlesWithin)
	topics, err := admin.DescribeTopics([]string{args.Topic})
	for ; err == nil && len(topics[0].Partitions) != driver.AdminPartitions && time.Now().Before(settled); topics, err = admin.DescribeTopics([]string{args.Topic}) {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}

	pcfg := newConfig(args)
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer(args.Brokers(), pcfg)
	if err != nil {
		return nil, err
	}
	err = producer.SendMessages(messages(args.Topic, driver.AdminRecords, 0, driver.Value))
	producer.Close()
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	if err := admin.DeleteRecords(args.Topic, map[int32]int64{0: driver.AdminDeleteBefore}); err != nil {
		return nil, fmt.Errorf("delete records: %w", err)
	}
	lowWatermark, err := client.GetOffset(args.Topic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	brokers, controller, err := admin.DescribeCluster()
	if err != nil {
		return nil, fmt.Errorf("describe cluster: %w", err)
	}
	ids := []int32{}
	for _, b := range brokers {
		ids = append(ids, b.ID())
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	group := args.Topic + "-admin"
	offsets, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		return nil, err
	}
	partition, err := offsets.ManagePartition(args.Topic, 0)
	if err != nil {
		return nil, err
	}
	partition.MarkOffset(driver.AdminCommitted, "")
	offsets.Commit()
	partition.Close()
	offsets.Close()
	listed, err := admin.ListConsumerGroups()
	if err != nil {
		return nil, err
	}
	described, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return nil, err
	}
	if err := admin.DeleteConsumerGroup(group); err != nil {
		return nil, fmt.Errorf("delete group: %w", err)
	}
	after, err := admin.ListConsumerGroups()
	if err != nil {
		return nil, err
	}
	_, wasListed := listed[group]
	_, stillListed := after[group]
	return map[string]any{
		"configs":       map[string]any{"created": created, "altered": altered},
		"partitions":    len(topics[0].Partitions),
		"low_watermark": lowWatermark,
		"brokers":       ids,
		"controller":    controller,
		"group":         map[string]any{"listed": wasListed, "state": described[0].State, "deleted": !stillListed},
	}, nil
}

func idempotentConfig(args *driver.Args) *sarama.Config {
	cfg := newConfig(args)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Max = 20
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	return cfg
}

func idempotent(args *driver.Args) (any, error) {
	producer, err := sarama.NewSyncProducer(args.Brokers(), idempotentConfig(args))
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	sent := messages(args.Topic, args.Count, 0, driver.Value)
	for _, m := range sent {
		if _, _, err := producer.SendMessage(m); err != nil {
			return nil, err
		}
	}
	return map[string]any{"produced": len(sent), "delivered": delivered(sent)}, nil
}

func transactionalProducer(args *driver.Args, id string) (sarama.SyncProducer, error) {
	cfg := idempotentConfig(args)
	cfg.Producer.Transaction.ID = id
	return sarama.NewSyncProducer(args.Brokers(), cfg)
}

func transactions(args *driver.Args) (any, error) {
	producer, err := transactionalProducer(args, args.Topic+"-txn")
	if err != nil {
		return nil, err
	}
	for _, prefix := range []string{"a", "c"} {
		if err := producer.BeginTxn(); err != nil {
			return nil, err
		}
		value := func(i int) string { return fmt.Sprintf("%s%d", prefix, i) }
		if err := producer.SendMessages(messages(args.Topic, args.Count, 0, value)); err != nil {
			return nil, err
		}
		end := producer.AbortTxn
		if prefix == "c" {
			end = producer.CommitTxn
		}
		if err := end(); err != nil {
			return nil, err
		}
	}
	producer.Close()
	committed, err := readUntilIdle(args, args.Topic, sarama.ReadCommitted)
	if err != nil {
		return nil, err
	}
	uncommitted, err := readUntilIdle(args, args.Topic, sarama.ReadUncommitted)
	if err != nil {
		return nil, err
	}
	return map[string]any{"committed": committed, "uncommitted": uncommitted}, nil
}

func ctp(args *driver.Args) (any, error) {
	group, output := args.Topic+"-ctp", args.Topic+"-out"
	cfg := newConfig(args)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest // where a group with no committed offset starts
	client, err := newClient(args, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	offsets, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		return nil, err
	}
	position, err := offsets.ManagePartition(args.Topic, 0)
	if err != nil {
		return nil, err
	}
	next, _ := position.NextOffset()
	position.Close()
	offsets.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	source, err := consumer.ConsumePartition(args.Topic, 0, next)
	if err != nil {
		return nil, err
	}
	defer source.Close()
	producer, err := transactionalProducer(args, group+"-txn")
	if err != nil {
		return nil, err
	}
	for _, commit := range []bool{true, false} {
		if err := producer.BeginTxn(); err != nil {
			return nil, err
		}
		var last int64
		for range driver.TxnBatch {
			select {
			case m := <-source.Messages():
				last = m.Offset
				out := &sarama.ProducerMessage{Topic: output, Partition: 0, Value: sarama.StringEncoder("out-" + string(m.Value))}
				if _, _, err := producer.SendMessage(out); err != nil {
					return nil, err
				}
			case <-time.After(args.Timeout):
				return nil, errors.New("the source records did not come")
			}
		}
		consumed := map[string][]*sarama.PartitionOffsetMetadata{args.Topic: {{Partition: 0, Offset: last + 1}}}
		if err := producer.AddOffsetsToTxn(consumed, group); err != nil {
			return nil, err
		}
		end := producer.AbortTxn
		if commit {
			end = producer.CommitTxn
		}
		if err := end(); err != nil {
			return nil, err
		}
	}
	producer.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, err
	}
	fetched, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{args.Topic: {0}})
	if err != nil {
		return nil, err
	}
	read, err := readUntilIdle(args, output, sarama.ReadCommitted)
	if err != nil {
		return nil, err
	}
	values := []string{}
	for _, r := range read {
		values = append(values, r[3].(string))
	}
	return map[string]any{"committed_offset": fetched.GetBlock(args.Topic, 0).Offset, "output": values}, nil
}

var compressions = map[string]sarama.CompressionCodec{
	"gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func codecs(args *driver.Args) (any, error) {
	results := map[string][]driver.Record{}
	for _, name := range driver.Codecs {
		topic := args.Topic + "-" + name
		cfg := newConfig(args)
		cfg.Producer.Compression = compressions[name]
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		producer, err := sarama.NewSyncProducer(args.Brokers(), cfg)
		if err != nil {
			return nil, err
		}
		err = producer.SendMessages(messages(topic, args.Count, 0, driver.Value))
		producer.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if results[name], err = readUntilIdle(args, topic, sarama.ReadUncommitted); err != nil {
			return nil, err
		}
	}
	return map[string]any{"codecs": results, "unavailable": map[string]string{}}, nil
}

func main() {
	driver.Main(map[string]driver.Action{
		"create": create, "produce": produce, "consume": consume, "member": runMember, "admin": admin,
		"idempotent": idempotent, "transactions": transactions, "ctp": ctp, "codecs": codecs,
	})
}
