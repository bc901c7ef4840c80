// kafkajs 2.2.4 driver (contract in compat/drivers/__init__.py).
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import {
  ADMIN_ALTERED_RETENTION, ADMIN_COMMITTED, ADMIN_CONFIGS, ADMIN_DELETE_BEFORE, ADMIN_PARTITIONS, ADMIN_RECORDS, CONFIG_SOURCES,
  closeRequested, deadline, emit, key, main, onceShown, tlsOptions, value
} from './driver.mjs'

const { ConfigResourceTypes, Kafka, Partitioners, logLevel } = kafkajs
// kafkajs has no public assign() (tulios/kafkajs#373: its consumer always joins a group), so the
// group-less read drives the same Cluster, Broker.fetch and Batch its consumer uses internally.
const Batch = createRequire(import.meta.url)('kafkajs/src/consumer/batch')
const READ_COMMITTED = 1 // kafkajs's consumer default isolation level
const READ_UNCOMMITTED = 0
const TXN_BATCH = 5 // compat/drivers/__init__.py TXN_BATCH

const client = args => new Kafka({ clientId: 'ottla-compat', brokers: args.bootstrap.split(','), logLevel: logLevel.WARN, ...security(args.security) })

// kafkajs's ssl and sasl options for --security; its mechanism names are lower case.
function security (secured) {
  if (!secured) return {}
  const options = { ssl: secured.protocol.endsWith('SSL') ? tlsOptions(secured) : false }
  if (secured.protocol.startsWith('SASL')) {
    options.sasl = { mechanism: secured.mechanism.toLowerCase(), username: secured.username, password: secured.password }
  }
  return options
}

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

const consume = args => read(args, args.topic, READ_COMMITTED)

async function read (args, topic, isolationLevel) {
  const kafka = client(args)
  const admin = kafka.admin()
  await admin.connect()
  let topicMetadata, offsets
  try {
    ({ topics: [topicMetadata] } = await admin.fetchTopicMetadata({ topics: [topic] }))
    offsets = await admin.fetchTopicOffsets(topic) // ListOffsets: low and high per partition
  } finally {
    await admin.disconnect()
  }
  const createCluster = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false, isolationLevel })
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  const position = new Map(offsets.map(o => [o.partition, BigInt(o.low)]))
  const end = new Map(offsets.map(o => [o.partition, BigInt(o.high)]))
  const records = []
  const check = deadline(args)
  try {
    for (;;) {
      const pending = [...position].filter(([p, at]) => at < end.get(p)).map(([p]) => p)
      if (pending.length === 0) break
      check(() => `positions ${[...position]}, end ${[...end]}`)
      const leaders = cluster.findLeaderForPartitions(topic, pending)
      for (const [nodeId, partitions] of Object.entries(leaders)) {
        const broker = await cluster.findBroker({ nodeId })
        let responses
        try {
          ({ responses } = await broker.fetch({
            isolationLevel,
            maxWaitTime: 500,
            topics: [{
              topic,
              partitions: partitions.map(p => ({ partition: p, fetchOffset: position.get(p).toString(), maxBytes: 1048576 }))
            }]
          }))
        } catch (e) {
          // As kafkajs's own consumer does (ConsumerGroup.fetch): a retriable error, such as a
          // leader that moved, refreshes the metadata and fetches again.
          if (!e.retriable) throw e
          await cluster.refreshMetadata()
          continue
        }
        for (const { partitions: data } of responses) {
          for (const partitionData of data) {
            const batch = new Batch(topic, position.get(partitionData.partition).toString(), partitionData)
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
    const afterAlter = await onceShown(configs, described => described['retention.ms'][0] === ADMIN_ALTERED_RETENTION)
    await admin.createPartitions({ topicPartitions: [{ topic: args.topic, count: ADMIN_PARTITIONS }] })
    const { topics } = await onceShown(() => admin.fetchTopicMetadata({ topics: [args.topic] }), m => m.topics[0].partitions.length === ADMIN_PARTITIONS)

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

async function idempotent (args) {
  const producer = client(args).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const delivered = []
  try {
    for (let i = 0; i < args.count; i++) {
      const [meta] = await producer.send({ topic: args.topic, messages: [{ key: key(i), value: value(i), partition: 0 }] })
      delivered.push([key(i), meta.partition, Number(meta.baseOffset)])
    }
  } finally {
    await producer.disconnect()
  }
  return { produced: delivered.length, delivered }
}

async function transactions (args) {
  const producer = client(args).producer({ transactionalId: `${args.topic}-txn`, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    for (const [prefix, commit] of [['a', false], ['c', true]]) {
      const txn = await producer.transaction()
      const messages = Array.from({ length: args.count }, (_, i) => ({ key: key(i), value: `${prefix}${i}`, partition: 0 }))
      await txn.send({ topic: args.topic, messages })
      await (commit ? txn.commit() : txn.abort())
    }
  } finally {
    await producer.disconnect()
  }
  const committed = (await read(args, args.topic, READ_COMMITTED)).records
  const uncommitted = (await read(args, args.topic, READ_UNCOMMITTED)).records
  return { committed, uncommitted }
}

async function ctp (args) {
  // kafkajs's consumer always joins a group; its records come through eachBatch and the
  // offsets go into the transaction with sendOffsets (the kafkajs exactly-once recipe).
  const group = `${args.topic}-ctp`
  const kafka = client(args)
  const consumer = kafka.consumer({ groupId: group, heartbeatInterval: 1000 })
  const producer = kafka.producer({ transactionalId: `${group}-txn`, idempotent: true, maxInFlightRequests: 1 })
  await Promise.all([consumer.connect(), producer.connect()])
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  const taken = []
  let transactions = 0
  let failure
  const done = new Promise(resolve => {
    consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        try {
          for (const m of batch.messages) {
            if (transactions >= 2) return resolve()
            taken.push(m)
            resolveOffset(m.offset)
            if (taken.length < TXN_BATCH) continue
            const txn = await producer.transaction()
            await txn.send({ topic: `${args.topic}-out`, messages: taken.map(t => ({ key: t.key, value: `out-${t.value}`, partition: 0 })) })
            const next = (BigInt(taken[taken.length - 1].offset) + 1n).toString()
            await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic: args.topic, partitions: [{ partition: 0, offset: next }] }] })
            await (transactions === 0 ? txn.commit() : txn.abort())
            taken.length = 0
            transactions += 1
          }
          if (transactions >= 2) resolve()
        } catch (err) {
          failure = err
          resolve()
        }
      }
    }).catch(err => { failure = err; resolve() })
  })
  try {
    const check = deadline(args)
    await Promise.race([done, new Promise((resolve, reject) => {
      const timer = setInterval(() => { try { check(() => `${transactions} transactions done`) } catch (err) { clearInterval(timer); reject(err) } }, 500)
      done.then(() => clearInterval(timer))
    })])
    if (failure) throw failure
  } finally {
    await Promise.all([consumer.disconnect(), producer.disconnect()])
  }
  const admin = kafka.admin()
  await admin.connect()
  let committed
  try {
    const [{ partitions }] = await admin.fetchOffsets({ groupId: group, topics: [args.topic] })
    committed = Number(partitions.find(p => p.partition === 0).offset)
  } finally {
    await admin.disconnect()
  }
  const output = (await read(args, `${args.topic}-out`, READ_COMMITTED)).records.map(r => r[3])
  return { committed_offset: committed < 0 ? null : committed, output }
}

async function codecs (args) {
  // gzip is built in; snappy, lz4 and zstd need codec packages (kafkajs-snappy, kafkajs-lz4,
  // @kafkajs/zstd) that the matrix does not install.
  const topic = `${args.topic}-gzip`
  const producer = client(args).producer()
  await producer.connect()
  try {
    const messages = Array.from({ length: args.count }, (_, i) => ({ key: key(i), value: value(i), partition: 0 }))
    await producer.send({ topic, messages, compression: kafkajs.CompressionTypes.GZIP })
  } finally {
    await producer.disconnect()
  }
  const unavailable = Object.fromEntries(['snappy', 'lz4', 'zstd'].map(c => [c, 'kafkajs needs a codec package for it, not installed']))
  return { codecs: { gzip: (await read(args, topic, READ_UNCOMMITTED)).records }, unavailable }
}

main({ create, produce, consume, member, admin, idempotent, transactions, ctp, codecs })
