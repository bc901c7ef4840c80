// @platformatic/kafka 1.35 driver (contract in compat/drivers/__init__.py).
import { Admin, Consumer, ListOffsetTimestamps, Producer, defaultPartitioner } from '@platformatic/kafka'
import { closeRequested, deadline, emit, key, main, value } from './driver.mjs'

const IS_CONTROL_BATCH = 0x20 // RecordBatch attributes bit 5 (KIP-98)
const base = args => ({ clientId: 'ottla-compat', bootstrapBrokers: [args.bootstrap] })

async function create (args) {
  const admin = new Admin(base(args))
  try {
    await admin.createTopics({ topics: [args.topic], partitions: args.partitions, replicas: 1 })
  } finally {
    await admin.close()
  }
  return { created: true }
}

async function produce (args) {
  // Wrap the stock partitioner only to learn where each key went; the producer takes the result
  // modulo the partition count and keeps send order per partition, so offsets follow from the
  // base offsets Produce returns.
  const placed = new Map()
  const partitioner = (message, k) => {
    const p = defaultPartitioner(message, k)
    placed.set(message.key, p)
    return p
  }
  const producer = new Producer(base(args))
  const messages = Array.from({ length: args.count }, (_, i) => ({
    topic: args.topic, key: Buffer.from(key(i)), value: Buffer.from(value(i))
  }))
  let result, count
  try {
    result = await producer.send({ messages, partitioner })
    count = (await producer.metadata({ topics: [args.topic] })).topics.get(args.topic).partitionsCount
  } finally {
    await producer.close()
  }
  const next = new Map(result.offsets.map(o => [o.partition, BigInt(o.offset)]))
  const delivered = messages.map(m => {
    const p = placed.get(m.key) % count
    const offset = next.get(p)
    next.set(p, offset + 1n)
    return [m.key.toString(), p, Number(offset)]
  })
  return { produced: delivered.length, delivered }
}

async function consume (args) {
  // The streaming consume() always joins a group; the group-less read uses the consumer's public
  // fetch() (Fetch v13+ by topic id) and listOffsets().
  const consumer = new Consumer({ ...base(args), groupId: 'ottla-compat-assign-only' })
  const records = []
  let count
  try {
    const topic = (await consumer.metadata({ topics: [args.topic] })).topics.get(args.topic)
    count = topic.partitionsCount
    const partitions = [...Array(count).keys()]
    const listed = async timestamp =>
      (await consumer.listOffsets({ topics: [args.topic], timestamp })).get(args.topic)
    const position = await listed(ListOffsetTimestamps.EARLIEST)
    const end = await listed(ListOffsetTimestamps.LATEST)
    const check = deadline(args)
    for (;;) {
      const pending = partitions.filter(p => position[p] < end[p])
      if (pending.length === 0) break
      check(() => `positions ${position}, end ${end}`)
      const byLeader = new Map() // Map.groupBy needs Node 21
      for (const p of pending) {
        const leader = topic.partitions[p].leader
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), p])
      }
      for (const [node, ps] of byLeader) {
        const response = await consumer.fetch({
          node,
          maxWaitTime: 500,
          topics: [{
            topicId: topic.id,
            partitions: ps.map(p => ({
              partition: p, fetchOffset: position[p], partitionMaxBytes: 1048576, currentLeaderEpoch: -1, lastFetchedEpoch: -1
            }))
          }]
        })
        for (const { partitions: data } of response.responses) {
          for (const { partitionIndex: p, records: batches = [] } of data) {
            for (const batch of batches) {
              const last = batch.firstOffset + BigInt(batch.lastOffsetDelta)
              if (!(batch.attributes & IS_CONTROL_BATCH)) {
                for (const r of batch.records) {
                  const offset = batch.firstOffset + BigInt(r.offsetDelta)
                  // Whole batches come back from the one holding fetchOffset: skip what was read.
                  if (offset >= position[p]) records.push([p, Number(offset), r.key.toString(), r.value.toString()])
                }
              }
              if (last >= position[p]) position[p] = last + 1n
            }
          }
        }
      }
    }
  } finally {
    await consumer.close()
  }
  return { partitions: count, records }
}


// The admin plan of compat/drivers/__init__.py (ADMIN_* there; the scenario checks these values).
const ADMIN_CONFIGS = { 'retention.ms': '3600000', 'cleanup.policy': 'compact' }
const ADMIN_ALTERED_RETENTION = '7200000'
const ADMIN_PARTITIONS = 3
const ADMIN_RECORDS = 10
const ADMIN_DELETE_BEFORE = 4n
const ADMIN_COMMITTED = 5n
const TOPIC_RESOURCE = 2
const SET = 0
// DescribeConfigs config_source ids, by Kafka's names.
const CONFIG_SOURCES = { 1: 'DYNAMIC_TOPIC_CONFIG', 4: 'STATIC_BROKER_CONFIG', 5: 'DEFAULT_CONFIG' }

async function admin (args) {
  const client = new Admin(base(args))
  const group = `${args.topic}-admin`
  try {
    const configs = Object.entries(ADMIN_CONFIGS).map(([name, value]) => ({ name, value }))
    await client.createTopics({ topics: [args.topic], partitions: 1, replicas: 1, configs })
    const describe = async () => {
      const [description] = await client.describeConfigs({
        resources: [{ resourceType: TOPIC_RESOURCE, resourceName: args.topic, configurationKeys: Object.keys(ADMIN_CONFIGS) }]
      })
      return Object.fromEntries(description.configs.map(c => [c.name, [c.value, CONFIG_SOURCES[c.configSource]]]))
    }
    const created = await describe()
    await client.incrementalAlterConfigs({
      resources: [{ resourceType: TOPIC_RESOURCE, resourceName: args.topic, configs: [{ name: 'retention.ms', configOperation: SET, value: ADMIN_ALTERED_RETENTION }] }]
    })
    const altered = await describe()
    await client.createPartitions({ topics: [{ name: args.topic, count: ADMIN_PARTITIONS }] })
    const cluster = await client.metadata({ topics: [args.topic], forceUpdate: true })

    const producer = new Producer(base(args))
    try {
      const messages = Array.from({ length: ADMIN_RECORDS }, (_, i) => ({
        topic: args.topic, key: Buffer.from(key(i)), value: Buffer.from(value(i)), partition: 0
      }))
      await producer.send({ messages })
    } finally {
      await producer.close()
    }
    const [deleted] = await client.deleteRecords({ topics: [{ name: args.topic, partitions: [{ partition: 0, offset: ADMIN_DELETE_BEFORE }] }] })

    await client.alterConsumerGroupOffsets({ groupId: group, topics: [{ name: args.topic, partitionOffsets: [{ partition: 0, offset: ADMIN_COMMITTED }] }] })
    const listed = (await client.listGroups()).has(group)
    const described = (await client.describeGroups({ groups: [group] })).get(group)
    await client.deleteGroups({ groups: [group] })
    const gone = !(await client.listGroups()).has(group)
    return {
      configs: { created, altered },
      partitions: cluster.topics.get(args.topic).partitionsCount,
      low_watermark: Number(deleted.partitions[0].lowWatermark),
      brokers: [...cluster.brokers.keys()].sort(),
      controller: cluster.controllerId,
      // platformatic names states in capitals (EMPTY); Kafka says "Empty".
      group: { listed, state: described.state[0] + described.state.slice(1).toLowerCase(), deleted: gone }
    }
  } finally {
    await client.close()
  }
}

async function member (args) {
  const closing = closeRequested()
  const options = { ...base(args), groupId: args.group, sessionTimeout: args.sessionTimeoutMs, heartbeatInterval: 1000 }
  if (args.instanceId) options.groupInstanceId = args.instanceId
  const consumer = new Consumer(options)
  consumer.on('consumer:group:join', ({ assignments }) => {
    const mine = assignments.find(a => a.topic === args.topic)
    emit({ event: 'assigned', partitions: [...(mine ? mine.partitions : [])].sort((a, b) => a - b) })
  })
  const stream = await consumer.consume({ topics: [args.topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
  const reading = (async () => {
    for await (const message of stream) {
      try {
        await message.commit()
      } catch (err) {
        continue // a rebalance took the partition: its next owner reads this again
      }
      emit({ event: 'records', records: [[message.partition, Number(message.offset), message.key.toString(), message.value.toString()]] })
    }
  })()
  await closing
  await stream.close()
  await reading
  await consumer.close()
  return { closed: true }
}

main({ create, produce, consume, admin, member })
