// kafkajs 2.2.4 driver (contract in compat/drivers/__init__.py).
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import { closeRequested, deadline, emit, key, main, value } from './driver.mjs'

const { ConfigResourceTypes, Kafka, Partitioners, logLevel } = kafkajs
// kafkajs has no public assign() (tulios/kafkajs#373: its consumer always joins a group), so the
// group-less read drives the same Cluster, Broker.fetch and Batch its consumer uses internally.
const Batch = createRequire(import.meta.url)('kafkajs/src/consumer/batch')
const READ_COMMITTED = 1 // kafkajs's consumer default isolation level

const client = args => new Kafka({ clientId: 'ottla-compat', brokers: [args.bootstrap], logLevel: logLevel.WARN })

async function create (args) {
  const admin = client(args).admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({
      topics: [{ topic: args.topic, numPartitions: args.partitions, replicationFactor: 1 }],
      waitForLeaders: true
    })
    if (!created) throw new Error(`topic ${args.topic} already exists`)
  } finally {
    await admin.disconnect()
  }
  return { created: true }
}

async function produce (args) {
  // Wrap the stock default partitioner only to learn where each key went; offsets then follow
  // from the per-partition base offsets Produce returns, since kafkajs keeps send order per partition.
  const placed = new Map()
  const createPartitioner = () => {
    const partition = Partitioners.DefaultPartitioner()
    return input => {
      const p = partition(input)
      placed.set(input.message.key, p)
      return p
    }
  }
  const producer = client(args).producer({ createPartitioner })
  await producer.connect()
  const messages = Array.from({ length: args.count }, (_, i) => ({ key: key(i), value: value(i) }))
  let metadata
  try {
    metadata = await producer.send({ topic: args.topic, messages })
  } finally {
    await producer.disconnect()
  }
  const next = new Map(metadata.map(m => [m.partition, BigInt(m.baseOffset)]))
  const delivered = messages.map(({ key }) => {
    const p = placed.get(key)
    const offset = next.get(p)
    next.set(p, offset + 1n)
    return [key, p, Number(offset)]
  })
  return { produced: delivered.length, delivered }
}

async function consume (args) {
  const kafka = client(args)
  const admin = kafka.admin()
  await admin.connect()
  let topicMetadata, offsets
  try {
    ({ topics: [topicMetadata] } = await admin.fetchTopicMetadata({ topics: [args.topic] }))
    offsets = await admin.fetchTopicOffsets(args.topic) // ListOffsets: low and high per partition
  } finally {
    await admin.disconnect()
  }
  const createCluster = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false, isolationLevel: READ_COMMITTED })
  await cluster.connect()
  await cluster.addTargetTopic(args.topic)
  const position = new Map(offsets.map(o => [o.partition, BigInt(o.low)]))
  const end = new Map(offsets.map(o => [o.partition, BigInt(o.high)]))
  const records = []
  const check = deadline(args)
  try {
    for (;;) {
      const pending = [...position].filter(([p, at]) => at < end.get(p)).map(([p]) => p)
      if (pending.length === 0) break
      check(() => `positions ${[...position]}, end ${[...end]}`)
      const leaders = cluster.findLeaderForPartitions(args.topic, pending)
      for (const [nodeId, partitions] of Object.entries(leaders)) {
        const broker = await cluster.findBroker({ nodeId })
        const { responses } = await broker.fetch({
          isolationLevel: READ_COMMITTED,
          maxWaitTime: 500,
          topics: [{
            topic: args.topic,
            partitions: partitions.map(p => ({ partition: p, fetchOffset: position.get(p).toString(), maxBytes: 1048576 }))
          }]
        })
        for (const { partitions: data } of responses) {
          for (const partitionData of data) {
            const batch = new Batch(args.topic, position.get(partitionData.partition).toString(), partitionData)
            for (const m of batch.messages) {
              records.push([batch.partition, Number(m.offset), m.key.toString(), m.value.toString()])
            }
            if (!batch.isEmptyIncludingFiltered()) position.set(batch.partition, BigInt(batch.lastOffset()) + 1n)
          }
        }
      }
    }
  } finally {
    await cluster.disconnect()
  }
  return { partitions: topicMetadata.partitions.length, records }
}

async function member (args) {
  // kafkajs has no group.instance.id option (no static membership), so --instance-id is refused.
  if (args.instanceId) throw new Error('kafkajs does not support static membership (group.instance.id)')
  const closing = closeRequested()
  const consumer = client(args).consumer({ groupId: args.group, sessionTimeout: args.sessionTimeoutMs, heartbeatInterval: 1000 })
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    emit({ event: 'assigned', partitions: [...(payload.memberAssignment[args.topic] || [])].sort((a, b) => a - b) })
  })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: args.topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.messages.length === 0) return
        const records = batch.messages.map(m => [batch.partition, Number(m.offset), m.key.toString(), m.value.toString()])
        try {
          const next = (BigInt(batch.lastOffset()) + 1n).toString()
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }])
        } catch (err) {
          return // a rebalance took the partition: its next owner reads these again
        }
        emit({ event: 'records', records })
      }
    })
    await closing
  } finally {
    await consumer.disconnect()
  }
  return { closed: true }
}

// The admin plan of compat/drivers/__init__.py (ADMIN_* there; the scenario checks these values).
const ADMIN_CONFIGS = { 'retention.ms': '3600000', 'cleanup.policy': 'compact' }
const ADMIN_ALTERED_RETENTION = '7200000'
const ADMIN_PARTITIONS = 3
const ADMIN_RECORDS = 10
const ADMIN_DELETE_BEFORE = 4
const ADMIN_COMMITTED = 5
// DescribeConfigs config_source ids, by Kafka's names.
const CONFIG_SOURCES = { 1: 'DYNAMIC_TOPIC_CONFIG', 4: 'STATIC_BROKER_CONFIG', 5: 'DEFAULT_CONFIG' }

async function admin (args) {
  const kafka = client(args)
  const admin = kafka.admin()
  await admin.connect()
  const group = `${args.topic}-admin`
  try {
    const configEntries = Object.entries(ADMIN_CONFIGS).map(([name, value]) => ({ name, value }))
    await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 1, replicationFactor: 1, configEntries }], waitForLeaders: true })
    const configs = async () => {
      const { resources } = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: args.topic, configNames: Object.keys(ADMIN_CONFIGS) }],
        includeSynonyms: false
      })
      return Object.fromEntries(resources[0].configEntries.map(e => [e.configName, [e.configValue, CONFIG_SOURCES[e.configSource]]]))
    }
    const created = await configs()
    // kafkajs has only the legacy AlterConfigs, which resets what it does not name: the other
    // override is sent again, as its users must.
    const altered = Object.entries({ ...ADMIN_CONFIGS, 'retention.ms': ADMIN_ALTERED_RETENTION }).map(([name, value]) => ({ name, value }))
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: args.topic, configEntries: altered }] })
    const afterAlter = await configs()
    await admin.createPartitions({ topicPartitions: [{ topic: args.topic, count: ADMIN_PARTITIONS }] })
    const { topics } = await admin.fetchTopicMetadata({ topics: [args.topic] })

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    try {
      const messages = Array.from({ length: ADMIN_RECORDS }, (_, i) => ({ key: key(i), value: value(i), partition: 0 }))
      await producer.send({ topic: args.topic, messages })
    } finally {
      await producer.disconnect()
    }
    await admin.deleteTopicRecords({ topic: args.topic, partitions: [{ partition: 0, offset: String(ADMIN_DELETE_BEFORE) }] })
    const offsets = await admin.fetchTopicOffsets(args.topic)
    const lowWatermark = Number(offsets.find(o => o.partition === 0).low)

    const cluster = await admin.describeCluster()
    await admin.setOffsets({ groupId: group, topic: args.topic, partitions: [{ partition: 0, offset: String(ADMIN_COMMITTED) }] })
    const listed = (await admin.listGroups()).groups.some(g => g.groupId === group)
    const { groups } = await admin.describeGroups([group])
    await admin.deleteGroups([group])
    const deleted = !(await admin.listGroups()).groups.some(g => g.groupId === group)
    return {
      configs: { created, altered: afterAlter },
      partitions: topics[0].partitions.length,
      low_watermark: lowWatermark,
      brokers: cluster.brokers.map(b => b.nodeId).sort(),
      controller: cluster.controller,
      group: { listed, state: groups[0].state, deleted }
    }
  } finally {
    await admin.disconnect()
  }
}

main({ create, produce, consume, member, admin })
