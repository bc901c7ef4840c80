// The Node side of the driver contract described in compat/drivers/__init__.py.
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
      'session-timeout-ms': { type: 'string', default: '6000' }
    }
  })
  const args = {
    ...values,
    partitions: Number(values.partitions),
    count: Number(values.count),
    timeout: Number(values.timeout),
    instanceId: values['instance-id'],
    sessionTimeoutMs: Number(values['session-timeout-ms'])
  }
  let result
  let code = 0
  try {
    if (!actions[args.action]) throw new Error(`unsupported action ${args.action}`)
    result = await actions[args.action](args)
  } catch (err) {
    console.error(err)
    result = { error: `${err.name}: ${err.message}` }
    code = 1
  }
  // Exit explicitly: a client that leaves a socket or timer behind must not hang the matrix.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code))
}
