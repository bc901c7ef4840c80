// Regenerates kafkajs_vectors.json: request bodies encoded by kafkajs's own hand-written
// encoders (src/protocol/requests/<api>/v<n>/request.js), a codec independent of the JSON
// definitions that both wire/ and kafka-python read. Run from the repo root after the
// compat packages are installed:  node tests/wire/kafkajs_vectors.mjs
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'

const require = createRequire(new URL('../../compat/node/package.json', import.meta.url))
const version = require('kafkajs/package.json').version
const request = (api, v) => require(`kafkajs/src/protocol/requests/${api}/v${v}/request`)

const topics = [{ topic: 'orders', partitions: [0, 7] }, { topic: 'é日本', partitions: [] }]
const cases = [
  ['apiVersions', 0, {}],
  ['apiVersions', 2, {}],
  ['metadata', 0, { topics: ['orders', 'payments'] }],
  ['metadata', 4, { topics: [], allowAutoTopicCreation: false }], // [] goes out as null: all topics,
  ['metadata', 6, { topics: ['orders'], allowAutoTopicCreation: true }],
  ['produce', 3, {
    acks: -1, timeout: 30000, transactionalId: 'tx-1', producerId: 4000, producerEpoch: 2,
    topicData: [{ topic: 'orders', partitions: [{ partition: 1, firstSequence: 5,
      messages: [{ key: 'k', value: 'v', timestamp: 1700000000000, headers: { h: 'x' } }] }] }],
  }],
  ['produce', 7, {
    acks: 1, timeout: 1000,
    topicData: [{ topic: 'orders', partitions: [{ partition: 0,
      messages: [{ value: 'a', timestamp: 1700000000000 }, { key: null, value: null, timestamp: 1700000000001 }] }] }],
  }],
  ['fetch', 4, { replicaId: -1, maxWaitTime: 500, minBytes: 1, maxBytes: 52428800, isolationLevel: 1,
    topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: '12345678901', maxBytes: 1048576 }] }] }],
  ['fetch', 11, { replicaId: -1, maxWaitTime: 500, minBytes: 1, maxBytes: 52428800, rackId: 'rack-a',
    sessionId: 7, sessionEpoch: 3, forgottenTopics: [{ topic: 'gone', partitions: [2] }],
    topics: [{ topic: 'orders', partitions: [{ partition: 3, currentLeaderEpoch: 9, fetchOffset: '42', maxBytes: 1048576 }] }] }],
  ['listOffsets', 2, { replicaId: -1, isolationLevel: 1,
    topics: [{ topic: 'orders', partitions: [{ partition: 0, timestamp: -2 }, { partition: 1 }] }] }],
  ['createTopics', 3, { validateOnly: true, timeout: 5000, topics: [{ topic: 'new', numPartitions: 3, replicationFactor: 1,
    configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
  { topic: 'placed', replicaAssignment: [{ partition: 0, replicas: [1, 2] }] }] }],
  ['deleteTopics', 1, { topics: ['old', 'older'], timeout: 5000 }],
  ['initProducerId', 1, { transactionalId: null, transactionTimeout: 60000 }],
  ['findCoordinator', 2, { coordinatorKey: 'group-1', coordinatorType: 0 }],
  ['joinGroup', 5, { groupId: 'g', sessionTimeout: 30000, rebalanceTimeout: 60000, memberId: '',
    groupInstanceId: 'static-1', protocolType: 'consumer',
    groupProtocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from('0001000000010006', 'hex') }] }],
  ['syncGroup', 3, { groupId: 'g', generationId: 4, memberId: 'm-1',
    groupAssignment: [{ memberId: 'm-1', memberAssignment: Buffer.from('00010000', 'hex') }] }],
  ['heartbeat', 3, { groupId: 'g', groupGenerationId: 4, memberId: 'm-1', groupInstanceId: null }],
  ['leaveGroup', 3, { groupId: 'g', members: [{ memberId: 'm-1' }, { memberId: 'm-2', groupInstanceId: 's' }] }],
  ['offsetCommit', 5, { groupId: 'g', groupGenerationId: 4, memberId: 'm-1',
    topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: '99' }, { partition: 1, offset: '7', metadata: 'md' }] }] }],
  ['offsetFetch', 1, { groupId: 'g', topics: [{ topic: 'orders', partitions: [{ partition: 0 }] }] }],
  ['offsetFetch', 4, { groupId: 'g', topics: [{ topic: 'orders', partitions: [{ partition: 0 }, { partition: 5 }] }] }],
  ['listGroups', 2, {}],
  ['describeGroups', 2, { groupIds: ['g', 'h'] }],
  ['addPartitionsToTxn', 1, { transactionalId: 'tx-1', producerId: 4000, producerEpoch: 2, topics }],
  ['addOffsetsToTxn', 1, { transactionalId: 'tx-1', producerId: 4000, producerEpoch: 2, groupId: 'g' }],
  ['endTxn', 1, { transactionalId: 'tx-1', producerId: 4000, producerEpoch: 2, transactionResult: true }],
  ['txnOffsetCommit', 1, { transactionalId: 'tx-1', groupId: 'g', producerId: 4000, producerEpoch: 2,
    topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: '10', metadata: null }] }] }],
  ['deleteRecords', 1, { timeout: 5000, topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: '100' }] }] }],
  ['describeConfigs', 2, { includeSynonyms: true, resources: [{ type: 2, name: 'orders', configNames: ['retention.ms'] },
    { type: 4, name: '1', configNames: [] }] }],
  ['alterConfigs', 1, { validateOnly: false, resources: [{ type: 2, name: 'orders',
    configEntries: [{ name: 'retention.ms', value: '1000' }] }] }],
  ['createPartitions', 1, { validateOnly: false, timeout: 5000,
    topicPartitions: [{ topic: 'orders', count: 6, assignments: [[1], [2]] }, { topic: 'payments', count: 2 }] }],
  ['saslHandshake', 1, { mechanism: 'SCRAM-SHA-256' }],
  ['alterPartitionReassignments', 0, { timeout: 3000,
    topics: [{ topic: 'orders', partitionAssignment: [{ partition: 0, replicas: [1, 2, 3] }] }] }],
  ['listPartitionReassignments', 0, { topics: [{ topic: 'orders', partitions: [0, 1] }] }],
  ['listPartitionReassignments', 0, { topics: null }],
]

const vectors = []
for (const [api, v, args] of cases) {
  const req = request(api, v)(args)
  const body = (await req.encode()).buffer
  vectors.push({ api_key: req.apiKey, version: req.apiVersion, api, hex: body.toString('hex') })
}
const out = new URL('./kafkajs_vectors.json', import.meta.url)
writeFileSync(out, JSON.stringify({ source: `kafkajs ${version}`, vectors }, null, 1) + '\n')
console.log(`wrote ${vectors.length} vectors from kafkajs ${version}`)
