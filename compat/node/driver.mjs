// The Node side of the driver contract described in compat/drivers/__init__.py.
import { parseArgs } from 'node:util'

export const key = i => `k${i}`
export const value = i => `v${i}`

export function deadline (args) {
  const end = Date.now() + args.timeout * 1000
  return what => {
    if (Date.now() > end) throw new Error(`timed out after ${args.timeout}s: ${what()}`)
  }
}

export async function main (actions) {
  const { values } = parseArgs({
    options: {
      bootstrap: { type: 'string' },
      topic: { type: 'string' },
      action: { type: 'string' },
      partitions: { type: 'string', default: '3' },
      count: { type: 'string', default: '1000' },
      timeout: { type: 'string', default: '30' }
    }
  })
  const args = {
    ...values,
    partitions: Number(values.partitions),
    count: Number(values.count),
    timeout: Number(values.timeout)
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
