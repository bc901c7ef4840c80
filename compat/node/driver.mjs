// The Node side of the driver contract described in compat/drivers/__init__.py.
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'

export const key = i => `k${i}`
export const value = i => `v${i}`

export function deadline (args) {
  const end = Date.now() + args.timeout * 1000
  return what => {
    if (Date.now() > end) throw new Error(`timed out after ${args.timeout}s: ${what()}`)
  }
}

// One line of a member's event stream (the member action of compat/drivers/__init__.py).
export const emit = event => process.stdout.write(JSON.stringify(event) + '\n')

// Resolves once stdin says "close" or ends: the member's cue to leave its group.
export function closeRequested () {
  return new Promise(resolve => {
    const lines = createInterface({ input: process.stdin })
    lines.on('line', line => { if (line.trim() === 'close') { lines.close() } })
    lines.on('close', resolve)
  })
}

// The admin plan of compat/drivers/__init__.py (ADMIN_* there; the scenario checks these values).
export const ADMIN_CONFIGS = { 'retention.ms': '3600000', 'cleanup.policy': 'compact,delete' }
export const ADMIN_ALTERED_RETENTION = '7200000'
export const ADMIN_PARTITIONS = 3
export const ADMIN_RECORDS = 10
export const ADMIN_DELETE_BEFORE = 4
export const ADMIN_COMMITTED = 5
// DescribeConfigs config_source ids, by Kafka's names.
export const CONFIG_SOURCES = { 1: 'DYNAMIC_TOPIC_CONFIG', 4: 'STATIC_BROKER_CONFIG', 5: 'DEFAULT_CONFIG' }

// As compat.drivers.once_shown: Kafka applies an alter or a partition growth when its broker
// replays the controller's record, a moment after answering; describe until it shows, a while.
const SETTLES_WITHIN_MS = 5000
export async function onceShown (read, shown) {
  const deadline = Date.now() + SETTLES_WITHIN_MS
  let answer = await read()
  while (!shown(answer) && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 100))
    answer = await read()
  }
  return answer
}

/** The TLS options of Node's tls.connect for a Security (CA, and the client certificate for mutual TLS). */
export function tlsOptions (security) {
  const read = path => path ? readFileSync(path, 'utf8') : undefined
  return { ca: read(security.ca), cert: read(security.cert), key: read(security.key) }
}

// An error and what it wraps (AggregateError's errors, cause): a client that reports "metadata
// failed 4 times" keeps the broker's reason (authentication, authorization) inside.
function describe (err, depth = 0) {
  const inner = [...(err.errors ?? []), ...(err.cause ? [err.cause] : [])]
  const text = `${err.name}: ${err.message}`
  if (depth > 3 || inner.length === 0) return text
  return `${text} (${[...new Set(inner.map(e => describe(e, depth + 1)))].join('; ')})`
}

export async function main (actions) {
  const { values } = parseArgs({
    options: {
      bootstrap: { type: 'string' },
      topic: { type: 'string' },
      action: { type: 'string' },
      partitions: { type: 'string', default: '3' },
      count: { type: 'string', default: '1000' },
      timeout: { type: 'string', default: '30' },
      group: { type: 'string' },
      'instance-id': { type: 'string' },
      'session-timeout-ms': { type: 'string', default: '6000' },
      security: { type: 'string' }
    }
  })
  const args = {
    ...values,
    partitions: Number(values.partitions),
    count: Number(values.count),
    timeout: Number(values.timeout),
    instanceId: values['instance-id'],
    sessionTimeoutMs: Number(values['session-timeout-ms']),
    // --security (compat/drivers/__init__.py's Security): null on a PLAINTEXT listener.
    security: values.security ? JSON.parse(values.security) : null
  }
  let result
  let code = 0
  try {
    if (!actions[args.action]) throw new Error(`unsupported action ${args.action}`)
    result = await actions[args.action](args)
  } catch (err) {
    console.error(err)
    result = { error: describe(err) }
    code = 1
  }
  // Exit explicitly: a client that leaves a socket or timer behind must not hang the matrix.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code))
}
