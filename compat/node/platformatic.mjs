// @platformatic/kafka 2 driver (contract in compat/drivers/__init__.py).
import './node20.mjs'
import { Admin, Consumer, FetchIsolationLevels, ListOffsetTimestamps, Producer, defaultPartitioner } from '@platformatic/kafka'
import {
  ADMIN_ALTERED_RETENTION, ADMIN_COMMITTED, ADMIN_CONFIGS, ADMIN_DELETE_BEFORE, ADMIN_PARTITIONS, ADMIN_RECORDS, CONFIG_SOURCES,
  closeRequested, deadline, emit, key, main, onceShown, tlsOptions, value
} from './driver.mjs'

const IS_CONTROL_BATCH = 0x20 // RecordBatch attributes bit 5 (KIP-98)
const IS_TRANSACTIONAL = 0x10 // RecordBatch attributes bit 4
const { READ_COMMITTED, READ_UNCOMMITTED } = FetchIsolationLevels
const TXN_BATCH = 5 // compat/drivers/__init__.py TXN_BATCH
const base = args => ({ clientId: 'ottla-compat', bootstrapBrokers: args.bootstrap.split(','), ...security(args.security) })

// @platformatic/kafka's tls and sasl options for --security.
function security (secured) {
  if (!secured) return {}
  const options = secured.protocol.endsWith('SSL') ? { tls: tlsOptions(secured) } : {}
  if (secured.protocol.startsWith('SASL')) {
    options.sasl = { mechanism: secured.mechanism, username: secured.username, password: secured.password }
  }
  return options
}

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

const consume = args => read(args, args.topic, READ_COMMITTED)

async function read (args, name, isolationLevel) {
  // The streaming consume() always joins a group; the group-less read uses the consumer's public
  // fetch() (Fetch v13+ by topic id) and listOffsets(). fetch() hands back raw batches, so
  // read_committed drops aborted transactions itself from the response's abortedTransactions
  // (as Kafka's own consumer does).
  const consumer = new Consumer({ ...base(args), groupId: 'ottla-compat-assign-only' })
  const records = []
  let count
  try {
    const topic = (await consumer.metadata({ topics: [name] })).topics.get(name)
    count = topic.partitionsCount
    const partitions = [...Array(count).keys()]
    const listed = async timestamp =>
      (await consumer.listOffsets({ topics: [name], timestamp, isolationLevel })).get(name)
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
          isolationLevel,
          topics: [{
            topicId: topic.id,
            partitions: ps.map(p => ({
              partition: p, fetchOffset: position[p], partitionMaxBytes: 1048576, currentLeaderEpoch: -1, lastFetchedEpoch: -1
            }))
          }]
        })
        for (const { partitions: data } of response.responses) {
          for (const { partitionIndex: p, records: batches = [], abortedTransactions = [] } of data) {
            const pendingAborts = [...(isolationLevel === READ_COMMITTED ? abortedTransactions : [])]
              .sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1))
            const aborting = new Set()
            for (const batch of batches) {
              const last = batch.firstOffset + BigInt(batch.lastOffsetDelta)
              while (pendingAborts.length && pendingAborts[0].firstOffset <= last) aborting.add(pendingAborts.shift().producerId)
              const aborted = (batch.attributes & IS_TRANSACTIONAL) && aborting.has(batch.producerId)
              if (batch.attributes & IS_CONTROL_BATCH) {
                if (aborted) aborting.delete(batch.producerId) // the ABORT marker ends it
              } else if (!aborted) {
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


const TOPIC_RESOURCE = 2
const SET = 0

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
    const altered = await onceShown(describe, described => described['retention.ms'][0] === ADMIN_ALTERED_RETENTION)
    await client.createPartitions({ topics: [{ name: args.topic, count: ADMIN_PARTITIONS }] })
    const cluster = await onceShown(() => client.metadata({ topics: [args.topic], forceUpdate: true }),
      c => c.topics.get(args.topic).partitionsCount === ADMIN_PARTITIONS)

    const producer = new Producer(base(args))
    try {
      const messages = Array.from({ length: ADMIN_RECORDS }, (_, i) => ({
        topic: args.topic, key: Buffer.from(key(i)), value: Buffer.from(value(i)), partition: 0
      }))
      await producer.send({ messages })
    } finally {
      await producer.close()
    }
    const [deleted] = await client.deleteRecords({ topics: [{ name: args.topic, partitions: [{ partition: 0, offset: BigInt(ADMIN_DELETE_BEFORE) }] }] })

    await client.alterConsumerGroupOffsets({ groupId: group, topics: [{ name: args.topic, partitionOffsets: [{ partition: 0, offset: BigInt(ADMIN_COMMITTED) }] }] })
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

async function idempotent (args) {
  const producer = new Producer({ ...base(args), idempotent: true, acks: -1 })
  const delivered = []
  try {
    for (let i = 0; i < args.count; i++) {
      const result = await producer.send({ messages: [{ topic: args.topic, key: Buffer.from(key(i)), value: Buffer.from(value(i)), partition: 0 }] })
      const [{ partition, offset }] = result.offsets
      delivered.push([key(i), partition, Number(offset)])
    }
  } finally {
    await producer.close()
  }
  return { produced: delivered.length, delivered }
}

async function transactions (args) {
  const producer = new Producer({ ...base(args), idempotent: true, transactionalId: `${args.topic}-txn` })
  try {
    for (const [prefix, commit] of [['a', false], ['c', true]]) {
      const txn = await producer.beginTransaction()
      const messages = Array.from({ length: args.count }, (_, i) => ({
        topic: args.topic, key: Buffer.from(key(i)), value: Buffer.from(`${prefix}${i}`), partition: 0
      }))
      await txn.send({ messages })
      await (commit ? txn.commit() : txn.abort())
    }
  } finally {
    await producer.close()
  }
  const committed = (await read(args, args.topic, READ_COMMITTED)).records
  const uncommitted = (await read(args, args.topic, READ_UNCOMMITTED)).records
  return { committed, uncommitted }
}

async function ctp (args) {
  // platformatic's exactly-once recipe: the transaction adds the consumer (AddOffsetsToTxn) and
  // each consumed message's offset (TxnOffsetCommit of offset + 1).
  const group = `${args.topic}-ctp`
  const consumer = new Consumer({ ...base(args), groupId: group, heartbeatInterval: 1000 })
  // T-out does not exist yet: Metadata must ask for it to be auto-created.
  const producer = new Producer({ ...base(args), idempotent: true, transactionalId: `${group}-txn`, autocreateTopics: true })
  let committed
  try {
    const stream = await consumer.consume({ topics: [args.topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false, isolationLevel: READ_COMMITTED })
    const check = deadline(args)
    const timer = setInterval(() => {
      try { check(() => 'ctp transactions') } catch (err) { stream.destroy(err) }
    }, 500)
    const taken = []
    let transactions = 0
    try {
      for await (const message of stream) {
        taken.push(message)
        if (taken.length < TXN_BATCH) continue
        const txn = await producer.beginTransaction()
        await txn.addConsumer(consumer)
        await txn.send({ messages: taken.map(t => ({ topic: `${args.topic}-out`, key: t.key, value: Buffer.from(`out-${t.value}`), partition: 0 })) })
        await txn.addOffset(taken[taken.length - 1])
        await (transactions === 0 ? txn.commit() : txn.abort())
        taken.length = 0
        transactions += 1
        if (transactions >= 2) break
      }
    } finally {
      clearInterval(timer)
      await stream.close()
    }
    const offsets = await consumer.listCommittedOffsets({ topics: [{ topic: args.topic, partitions: [0] }] })
    committed = Number(offsets.get(args.topic)[0])
  } finally {
    await producer.close()
    await consumer.close()
  }
  const output = (await read(args, `${args.topic}-out`, READ_COMMITTED)).records.map(r => r[3])
  return { committed_offset: committed < 0 ? null : committed, output }
}

async function codecs (args) {
  // zstd needs node:zlib's zstdCompressSync (Node >= 22.15); without it the client refuses it.
  const result = {}
  const unavailable = {}
  for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
    const topic = `${args.topic}-${codec}`
    const producer = new Producer({ ...base(args), compression: codec, autocreateTopics: true })
    try {
      const messages = Array.from({ length: args.count }, (_, i) => ({
        topic, key: Buffer.from(key(i)), value: Buffer.from(value(i)), partition: 0
      }))
      await producer.send({ messages })
    } catch (err) {
      const unsupported = [err, ...(err.errors ?? [])].find(e => e.code === 'PLT_KFK_UNSUPPORTED_COMPRESSION')
      if (!unsupported) throw err
      unavailable[codec] = `@platformatic/kafka: ${unsupported.message}`
      continue
    } finally {
      await producer.close()
    }
    result[codec] = (await read(args, topic, READ_UNCOMMITTED)).records
  }
  return { codecs: result, unavailable }
}

main({ create, produce, consume, admin, member, idempotent, transactions, ctp, codecs })
