// @platformatic/kafka 1.35 driver (contract in compat/drivers/__init__.py).
import { Admin, Consumer, ListOffsetTimestamps, Producer, defaultPartitioner } from '@platformatic/kafka'
import { deadline, key, main, value } from './driver.mjs'

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

main({ create, produce, consume })
