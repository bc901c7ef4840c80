// The twmb/franz-go driver (contract in compat/drivers/__init__.py): kgo for producing and
// consuming, kadm for the admin API.
//
// kgo negotiates request versions (ApiVersions) and its producer is idempotent by default
// (acks=all), so every produce exercises InitProducerId. Every action runs under a context that
// ends at --timeout, and kgo retries retriable errors until a record times out (options).
package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ottla/compat/go/driver"
)

// idle is how long a read until idle waits for a record before it ends.
const idle = 3 * time.Second

// adminSettlesWithin is compat.drivers.ADMIN_SETTLES_WITHIN.
const adminSettlesWithin = 5 * time.Second

func options(args *driver.Args, extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(args.Brokers()...), kgo.ClientID("compat-franz-go"), kgo.DialTimeout(args.Timeout),
		// kgo retries a record until it is delivered or times out; a record that times out names
		// the last error it met (a refused SASL login, say), where the action's context would
		// end it with no more than "context deadline exceeded".
		kgo.RecordDeliveryTimeout(args.Timeout * 3 / 4),
	}
	if args.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(args.TLS))
	}
	if security := args.Security; security != nil && security.SASL() {
		user, password := *security.Username, *security.Password
		switch *security.Mechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
		}
	}
	return append(opts, extra...)
}

func newClient(args *driver.Args, extra ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(options(args, extra...)...)
}

func deadline(args *driver.Args) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), args.Timeout)
}

func create(args *driver.Args) (any, error) {
	client, err := newClient(args)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx, cancel := deadline(args)
	defer cancel()
	created, err := kadm.NewClient(client).CreateTopic(ctx, int32(args.Partitions), 1, nil, args.Topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		return nil, err
	}
	return map[string]bool{"created": true}, nil
}

func records(topic string, count int, partition int32, value func(int) string) []*kgo.Record {
	out := make([]*kgo.Record, count)
	for i := range out {
		out[i] = &kgo.Record{Topic: topic, Partition: partition, Key: []byte(driver.Key(i)), Value: []byte(value(i))}
	}
	return out
}

func delivered(sent []*kgo.Record) [][]any {
	out := make([][]any, len(sent))
	for i, r := range sent {
		out[i] = []any{string(r.Key), r.Partition, r.Offset}
	}
	return out
}

// produceAll sends every record at once, as an application would, and waits for every ack.
func produceAll(ctx context.Context, client *kgo.Client, sent []*kgo.Record) error {
	return client.ProduceSync(ctx, sent...).FirstErr()
}

func produce(args *driver.Args) (any, error) {
	// Stock producer defaults: idempotent, acks=all, the sticky key partitioner (murmur2, as Java's).
	client, err := newClient(args)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx, cancel := deadline(args)
	defer cancel()
	sent := records(args.Topic, args.Count, 0, driver.Value)
	if err := produceAll(ctx, client, sent); err != nil {
		return nil, err
	}
	return map[string]any{"produced": len(sent), "delivered": delivered(sent)}, nil
}

func record(r *kgo.Record) driver.Record {
	return driver.Record{r.Partition, r.Offset, string(r.Key), string(r.Value)}
}

// fetchErr is the first error a poll reports, but a poll that only ran out of time.
func fetchErr(fetches kgo.Fetches) error {
	for _, fetchError := range fetches.Errors() {
		if !errors.Is(fetchError.Err, context.DeadlineExceeded) && !errors.Is(fetchError.Err, context.Canceled) {
			return fmt.Errorf("fetch %s/%d: %w", fetchError.Topic, fetchError.Partition, fetchError.Err)
		}
	}
	return nil
}

func consume(args *driver.Args) (any, error) {
	partitions, read, err := readToEnd(args, args.Topic)
	if err != nil {
		return nil, err
	}
	return map[string]any{"partitions": partitions, "records": read}, nil
}

// readToEnd reads every partition of topic by assignment from its earliest offset up to the
// end offset listed when the read began: the topic's partition count and the records.
func readToEnd(args *driver.Args, topic string) (int, []driver.Record, error) {
	ctx, cancel := deadline(args)
	defer cancel()
	lister, err := newClient(args)
	if err != nil {
		return 0, nil, err
	}
	ends, err := kadm.NewClient(lister).ListEndOffsets(ctx, topic)
	lister.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("list end offsets: %w", err)
	}
	starts := map[int32]kgo.Offset{}
	remaining := map[int32]int64{} // partition -> its end offset, until read up to it
	for partition, end := range ends[topic] {
		starts[partition] = kgo.NewOffset().AtStart()
		if end.Offset > 0 {
			remaining[partition] = end.Offset
		}
	}
	client, err := newClient(args, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}))
	if err != nil {
		return 0, nil, err
	}
	defer client.Close()
	read := []driver.Record{}
	for len(remaining) > 0 {
		fetches := client.PollFetches(ctx)
		if err := fetchErr(fetches); err != nil {
			return 0, nil, err
		}
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("read stalled before the end offsets: %v left", remaining)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			read = append(read, record(r))
			if end, ok := remaining[r.Partition]; ok && r.Offset >= end-1 {
				delete(remaining, r.Partition)
			}
		})
	}
	return len(ends[topic]), read, nil
}

// readUntilIdle reads partition 0 of topic from the earliest offset until nothing comes for `idle`.
func readUntilIdle(args *driver.Args, topic string, isolation kgo.IsolationLevel) ([]driver.Record, error) {
	client, err := newClient(args, kgo.FetchIsolationLevel(isolation),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	read := []driver.Record{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		fetches := client.PollFetches(ctx)
		cancel()
		if err := fetchErr(fetches); err != nil {
			return nil, err
		}
		if fetches.NumRecords() == 0 {
			return read, nil
		}
		fetches.EachRecord(func(r *kgo.Record) { read = append(read, record(r)) })
	}
}

// assignment is a member's whole assignment of its topic, kept across cooperative rebalances
// (which add and take partitions incrementally) and emitted after each change. kgo also calls
// its callbacks with nothing added or taken (a KIP-848 heartbeat that changed no partition):
// those are no change.
type assignment struct {
	mu   sync.Mutex
	held map[int32]bool
}

func (a *assignment) change(topic string, partitions map[string][]int32, held bool) {
	if len(partitions[topic]) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range partitions[topic] {
		if held {
			a.held[p] = true
		} else {
			delete(a.held, p)
		}
	}
	list := []int32{}
	for p := range a.held {
		list = append(list, p)
	}
	sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
	driver.Emit(map[string]any{"event": "assigned", "partitions": list})
}

func runMember(args *driver.Args, protocol string) (any, error) {
	closing := driver.CloseRequested()
	held := &assignment{held: map[int32]bool{}}
	var heartbeats atomic.Int64 // ConsumerGroupHeartbeat requests sent: proof the member is KIP-848
	opts := []kgo.Opt{
		kgo.ConsumerGroup(args.Group), kgo.ConsumeTopics(args.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { held.change(args.Topic, p, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { held.change(args.Topic, p, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { held.change(args.Topic, p, false) }),
		kgo.WithHooks(heartbeatCounter{&heartbeats}),
	}
	if protocol == "consumer" {
		// KIP-848: the broker assigns ("uniform", kgo's name for its sticky balancer) and sets the
		// session timeout and heartbeat interval.
		opts = append(opts, kgo.ServerSideBalancer())
	} else {
		opts = append(opts, kgo.SessionTimeout(time.Duration(args.SessionTimeoutMs)*time.Millisecond), kgo.HeartbeatInterval(time.Second))
	}
	if args.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(args.InstanceID))
	}
	client, err := newClient(args, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-closing
		cancel()
	}()
	var failure error
	for ctx.Err() == nil {
		fetches := client.PollFetches(ctx)
		if err := fetchErr(fetches); err != nil {
			failure = err
			break
		}
		batch := fetches.Records()
		if len(batch) > 0 {
			// Rebalances wait while the batch is committed (BlockRebalanceOnPoll): what is
			// reported read is committed by the partition's owner.
			if err := client.CommitRecords(ctx, batch...); err != nil && ctx.Err() == nil {
				failure = fmt.Errorf("commit: %w", err)
				client.AllowRebalance()
				break
			}
			read := make([]driver.Record, len(batch))
			for i, r := range batch {
				read[i] = record(r)
			}
			driver.Emit(map[string]any{"event": "records", "records": read})
		}
		client.AllowRebalance()
	}
	client.Close() // leaves the group (a static member stays, as Kafka's consumers do)
	if failure != nil {
		return nil, failure
	}
	if protocol == "consumer" && heartbeats.Load() == 0 {
		return nil, errors.New("kgo joined with the classic protocol: the broker offered no usable ConsumerGroupHeartbeat")
	}
	return map[string]bool{"closed": true}, nil
}

// heartbeatCounter counts the ConsumerGroupHeartbeat requests the client writes.
type heartbeatCounter struct{ sent *atomic.Int64 }

func (h heartbeatCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.ConsumerGroupHeartbeat.Int16() && err == nil {
		h.sent.Add(1)
	}
}

func admin(args *driver.Args) (any, error) {
	client, err := newClient(args)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	adm := kadm.NewClient(client)
	ctx, cancel := deadline(args)
	defer cancel()
	configs := map[string]*string{}
	for name, value := range driver.AdminConfigs {
		configs[name] = &value
	}
	created, err := adm.CreateTopic(ctx, 1, 1, configs, args.Topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	describe := func() (map[string][]string, error) {
		described, err := adm.DescribeTopicConfigs(ctx, args.Topic)
		if err != nil {
			return nil, err
		}
		resource, err := described.On(args.Topic, nil)
		if err == nil {
			err = resource.Err
		}
		if err != nil {
			return nil, err
		}
		out := map[string][]string{}
		for _, config := range resource.Configs {
			if _, ok := driver.AdminConfigs[config.Key]; ok && config.Value != nil {
				out[config.Key] = []string{*config.Value, config.Source.String()}
			}
		}
		return out, nil
	}
	createdConfigs, err := describe()
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	retention := driver.AdminAlteredRetention
	alteredResponses, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &retention}}, args.Topic)
	if err == nil {
		_, err = alteredResponses.On(args.Topic, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("alter: %w", err)
	}
	// As compat.drivers.once_shown: Kafka applies an alter or a partition growth when its broker
	// replays the controller's record, a moment after answering; describe until it shows, a while.
	settled := time.Now().Add(adminSettlesWithin)
	altered, err := describe()
	for ; err == nil && (altered["retention.ms"] == nil || altered["retention.ms"][0] != retention) && time.Now().Before(settled); altered, err = describe() {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("describe after alter: %w", err)
	}
	grown, err := adm.UpdatePartitions(ctx, driver.AdminPartitions, args.Topic)
	if err == nil {
		err = grown.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("create partitions: %w", err)
	}
	partitions := func() (int, error) {
		metadata, err := adm.Metadata(ctx, args.Topic)
		if err != nil {
			return 0, err
		}
		return len(metadata.Topics[args.Topic].Partitions), metadata.Topics[args.Topic].Err
	}
	settled = time.Now().Add(adminSettlesWithin)
	count, err := partitions()
	for ; err == nil && count != driver.AdminPartitions && time.Now().Before(settled); count, err = partitions() {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("describe topic: %w", err)
	}

	producer, err := newClient(args, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	err = produceAll(ctx, producer, records(args.Topic, driver.AdminRecords, 0, driver.Value))
	producer.Close()
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	var cut kadm.Offsets
	cut.AddOffset(args.Topic, 0, driver.AdminDeleteBefore, -1)
	deleted, err := adm.DeleteRecords(ctx, cut)
	if err == nil {
		err = deleted.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("delete records: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, args.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	start, _ := starts.Lookup(args.Topic, 0)
	cluster, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe cluster: %w", err)
	}
	ids := []int32{}
	for _, broker := range cluster.Brokers {
		ids = append(ids, broker.NodeID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	group := args.Topic + "-admin"
	var commit kadm.Offsets
	commit.AddOffset(args.Topic, 0, driver.AdminCommitted, -1)
	committed, err := adm.CommitOffsets(ctx, group, commit)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("commit offsets: %w", err)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = described.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("describe group: %w", err)
	}
	removed, err := adm.DeleteGroup(ctx, group)
	if err == nil {
		err = removed.Err
	}
	if err != nil {
		return nil, fmt.Errorf("delete group: %w", err)
	}
	after, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups after delete: %w", err)
	}
	_, wasListed := listed[group]
	_, stillListed := after[group]
	return map[string]any{
		"configs":       map[string]any{"created": createdConfigs, "altered": altered},
		"partitions":    count,
		"low_watermark": start.Offset,
		"brokers":       ids,
		"controller":    cluster.Controller,
		"group":         map[string]any{"listed": wasListed, "state": described[group].State, "deleted": !stillListed},
	}, nil
}

func idempotent(args *driver.Args) (any, error) {
	client, err := newClient(args, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx, cancel := deadline(args)
	defer cancel()
	sent := records(args.Topic, args.Count, 0, driver.Value)
	for _, r := range sent {
		if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
			return nil, err
		}
	}
	return map[string]any{"produced": len(sent), "delivered": delivered(sent)}, nil
}

func transactions(args *driver.Args) (any, error) {
	client, err := newClient(args, kgo.TransactionalID(args.Topic+"-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := deadline(args)
	defer cancel()
	for _, prefix := range []string{"a", "c"} {
		if err := client.BeginTransaction(); err != nil {
			return nil, err
		}
		value := func(i int) string { return fmt.Sprintf("%s%d", prefix, i) }
		if err := produceAll(ctx, client, records(args.Topic, args.Count, 0, value)); err != nil {
			return nil, err
		}
		if err := client.EndTransaction(ctx, kgo.TransactionEndTry(prefix == "c")); err != nil {
			return nil, err
		}
	}
	client.Close()
	committed, err := readUntilIdle(args, args.Topic, kgo.ReadCommitted())
	if err != nil {
		return nil, err
	}
	uncommitted, err := readUntilIdle(args, args.Topic, kgo.ReadUncommitted())
	if err != nil {
		return nil, err
	}
	return map[string]any{"committed": committed, "uncommitted": uncommitted}, nil
}

// ctp is kgo's own consume-transform-produce: a GroupTransactSession (a group member whose
// polled offsets the transaction commits, TxnOffsetCommit) reading TxnBatch records a transaction.
func ctp(args *driver.Args) (any, error) {
	group, output := args.Topic+"-ctp", args.Topic+"-out"
	session, err := kgo.NewGroupTransactSession(options(args,
		kgo.TransactionalID(group+"-txn"), kgo.ConsumerGroup(group), kgo.ConsumeTopics(args.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation(),
	)...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := deadline(args)
	defer cancel()
	for _, commit := range []bool{true, false} {
		if err := session.Begin(); err != nil {
			return nil, err
		}
		for got := 0; got < driver.TxnBatch; {
			fetches := session.PollRecords(ctx, driver.TxnBatch-got)
			if err := fetchErr(fetches); err != nil {
				return nil, err
			}
			if ctx.Err() != nil {
				return nil, errors.New("the source records did not come")
			}
			for _, r := range fetches.Records() {
				out := &kgo.Record{Topic: output, Partition: 0, Value: append([]byte("out-"), r.Value...)}
				if err := session.ProduceSync(ctx, out).FirstErr(); err != nil {
					return nil, err
				}
				got++
			}
		}
		committed, err := session.End(ctx, kgo.TransactionEndTry(commit))
		if err != nil {
			return nil, err
		}
		if committed != commit {
			return nil, fmt.Errorf("the transaction ended committed=%v, asked %v", committed, commit)
		}
	}
	session.Close()
	client, err := newClient(args)
	if err != nil {
		return nil, err
	}
	fetched, err := kadm.NewClient(client).FetchOffsets(ctx, group)
	client.Close()
	if err == nil {
		err = fetched.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets: %w", err)
	}
	position, _ := fetched.Lookup(args.Topic, 0)
	read, err := readUntilIdle(args, output, kgo.ReadCommitted())
	if err != nil {
		return nil, err
	}
	values := []string{}
	for _, r := range read {
		values = append(values, r[3].(string))
	}
	return map[string]any{"committed_offset": position.At, "output": values}, nil
}

var compressions = map[string]kgo.CompressionCodec{
	"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

func codecs(args *driver.Args) (any, error) {
	results := map[string][]driver.Record{}
	ctx, cancel := deadline(args)
	defer cancel()
	for _, name := range driver.Codecs {
		topic := args.Topic + "-" + name
		client, err := newClient(args, kgo.ProducerBatchCompression(compressions[name]), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.AllowAutoTopicCreation())
		if err != nil {
			return nil, err
		}
		err = produceAll(ctx, client, records(topic, args.Count, 0, driver.Value))
		client.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if _, results[name], err = readToEnd(args, topic); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return map[string]any{"codecs": results, "unavailable": map[string]string{}}, nil
}

func main() {
	driver.Main(map[string]driver.Action{
		"create": create, "produce": produce, "consume": consume, "admin": admin,
		"member":     func(args *driver.Args) (any, error) { return runMember(args, args.GroupProtocol) },
		"idempotent": idempotent, "transactions": transactions, "ctp": ctp, "codecs": codecs,
	})
}
