// A minimal stand-in for 'tap' on the GPU machine, which has node (carried) but none of the
// dev dependencies. It runs the subset of tap's API that test/cuda.test.ts and
// test/golden.test.ts use, prints TAP-like lines, and exits non-zero on any failure.
// scripts/gpu-check.sh puts it at node_modules/tap there; CI and development use the real tap.
'use strict';
const util = require('util');

let failures = 0, passes = 0, skips = 0;
const pad = (depth) => '    '.repeat(Math.max(0, depth));

function matches(value, pattern) {
  if (pattern instanceof RegExp) return pattern.test(String(value));
  if (typeof pattern === 'string') return String(value).includes(pattern);
  if (pattern && typeof pattern === 'object')
    return Object.entries(pattern).every(([k, v]) => value != null && matches(value[k], v));
  return value === pattern;
}

class Test {
  constructor(name, depth) {
    this.name = name;
    this.depth = depth;
    this.children = [];
    this.teardowns = [];
    this.failed = false;
  }
  line(ok, msg, extra) {
    const indent = pad(this.depth);
    if (ok) passes++;
    else {
      failures++;
      this.failed = true;
    }
    console.log(`${indent}${ok ? 'ok' : 'not ok'} - ${msg}${extra && !ok ? `\n${indent}  # ${extra}` : ''}`);
    return ok;
  }
  ok(v, msg = 'should be truthy') { return this.line(!!v, msg); }
  notOk(v, msg = 'should be falsy') { return this.line(!v, msg); }
  equal(a, b, msg = 'should be equal') { return this.line(a === b, msg, `got ${util.inspect(a)}, wanted ${util.inspect(b)}`); }
  same(a, b, msg = 'should be equivalent') {
    const norm = (v) => (ArrayBuffer.isView(v) ? Array.from(v, (x) => (typeof x === 'bigint' ? x.toString() : x)) : v);
    return this.line(util.isDeepStrictEqual(JSON.parse(JSON.stringify(norm(a), (k, v) => (typeof v === 'bigint' ? v.toString() : norm(v)))),
      JSON.parse(JSON.stringify(norm(b), (k, v) => (typeof v === 'bigint' ? v.toString() : norm(v))))), msg,
      `got ${util.inspect(a).slice(0, 300)}, wanted ${util.inspect(b).slice(0, 300)}`);
  }
  match(v, p, msg = 'should match pattern') { return this.line(matches(v, p), msg, `got ${util.inspect(v).slice(0, 300)}`); }
  notMatch(v, p, msg = 'should not match pattern') { return this.line(!matches(v, p), msg); }
  type(v, t, msg = `type is ${t}`) { return this.line(typeof v === t || (typeof t === 'function' && v instanceof t), msg); }
  fail(msg = 'fail') { return this.line(false, msg); }
  pass(msg = 'pass') { return this.line(true, msg); }
  comment(...a) { console.log(`${pad(this.depth)}# ${a.join(' ')}`); }
  throws(fn, wanted, msg) {
    if (typeof wanted === 'string' && msg === undefined) [msg, wanted] = [wanted, undefined];
    try {
      fn();
    } catch (e) {
      return this.line(wanted === undefined || matches(e, wanted instanceof RegExp ? { message: wanted } : wanted), msg ?? 'expected to throw', `threw ${e && e.message}`);
    }
    return this.line(false, msg ?? 'expected to throw', 'did not throw');
  }
  teardown(fn) { this.teardowns.push(fn); }
  test(name, opts, fn) {
    if (typeof opts === 'function') [fn, opts] = [opts, {}];
    const child = new Test(name, this.depth + 1);
    this.children.push({ child, opts: opts || {}, fn });
    return Promise.resolve();
  }
  async run(fn) {
    try {
      await fn(this);
      for (const { child, opts, fn: f } of this.children) {
        if (opts.skip) {
          skips++;
          console.log(`${pad(this.depth)}ok - ${child.name} # SKIP ${opts.skip === true ? '' : opts.skip}`);
          continue;
        }
        console.log(`${pad(this.depth)}# Subtest: ${child.name}`);
        await child.run(f);
        if (child.failed) this.failed = true;
        console.log(`${pad(this.depth)}${child.failed ? 'not ok' : 'ok'} - ${child.name}`);
      }
    } catch (e) {
      this.line(false, `${this.name}: threw ${e && e.stack}`);
    } finally {
      for (const f of this.teardowns) await f();
    }
  }
}

const root = new Test('root', -1);
let scheduled = false;
const proxy = new Proxy(root, {
  get(target, prop) {
    if (prop === 'test' && !scheduled) {
      scheduled = true;
      setImmediate(async () => {
        await root.run(async () => {});
        console.log(`# { total: ${passes + failures + skips}, pass: ${passes}, fail: ${failures}, skip: ${skips} }`);
        process.exitCode = failures ? 1 : 0;
      });
    }
    const v = target[prop];
    return typeof v === 'function' ? v.bind(target) : v;
  },
});
module.exports = proxy;
module.exports.default = proxy;
module.exports.__esModule = true;
