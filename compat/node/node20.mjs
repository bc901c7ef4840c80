// @platformatic/kafka 2 wants Node >= 22.22 and, of what Node 20 lacks, calls only
// Promise.withResolvers (ES2024): defined here, as the standard specifies it, before the client loads.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
