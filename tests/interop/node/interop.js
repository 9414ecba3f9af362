'use strict';
// Interop scenarios for the unmodified ali-ons RocketMQ client (version pinned in
// package.json) against a name server and its brokers.
//
//   NAMESRV=127.0.0.1:9876 node interop.js SCENARIO     (or: node interop.js --list)
//
// Every scenario uses fresh topic and group names, prints one "PASS name ..." or
// "FAIL name ...: reason" line, is bounded by LSMQ_INTEROP_TIMEOUT seconds (default 58) and
// exits 1 on failure. ali-ons cannot create topics, so each scenario first runs the shell
// command in LSMQ_CREATE_TOPIC_CMD with {topic} and {namesrv} replaced (run.sh supplies a
// default that uses the Go suite's helper).
//
// Environment: NAMESRV (or NAMESRV_ADDR), LSMQ_CREATE_TOPIC_CMD, LSMQ_INTEROP_TIMEOUT,
// LSMQ_INTEROP_VERBOSE=1 (progress lines and the client's warnings as they happen).

const crypto = require('crypto');
const { execSync } = require('child_process');
const { Producer, Consumer, Message } = require('ali-ons');
const RemotingCommand = require('ali-ons/lib/protocol/command/remoting_command');
const RequestCode = require('ali-ons/lib/protocol/request_code');
const ResponseCode = require('ali-ons/lib/protocol/response_code');

const verbose = process.env.LSMQ_INTEROP_VERBOSE === '1';
const IDX_PROP = 'lsmq_idx';

const sleep = ms => new Promise(resolve => setTimeout(resolve, Math.max(0, ms)));

// ali-ons asserts an HTTP client is given, though it only uses it to look the name server up
// from an HTTP address service (onsAddr). With nameSrv set that never happens; this one
// makes sure of it.
const noHttp = {
  async request(url) {
    throw new Error(`interop: refusing HTTP request to ${url}: nameSrv must be used`);
  },
};

class Ctx {
  constructor(scenario, namesrv, timeoutMs) {
    this.scenario = scenario;
    this.namesrv = namesrv;
    this.runId = (Date.now() & 0xffffff).toString(16) + crypto.randomBytes(3).toString('hex');
    this.start = Date.now();
    this.deadline = this.start + timeoutMs;
    this.failures = [];
    this.lines = [];
    this.closers = [];
    this.clientErrors = [];
    const self = this;
    // ali-ons logs through this; keep its warnings and errors with the scenario's lines
    this.logger = {
      info() {},
      debug() {},
      warn(...args) { self.clientLog('client warn', args); },
      error(...args) { self.clientLog('client error', args); },
    };
  }

  name(what) {
    return `node_${what}_${this.runId}`;
  }

  elapsed() {
    return (Date.now() - this.start) / 1000;
  }

  info(msg) {
    const line = `  [${this.elapsed().toFixed(1).padStart(5)}s] ${msg}`;
    this.lines.push(line);
    if (verbose) {
      process.stderr.write(line + '\n');
    }
  }

  clientLog(what, args) {
    const text = args.map(a => (a instanceof Error ? `${a.name}: ${a.message}` : String(a))).join(' ');
    this.clientErrors.push(text);
    if (this.clientErrors.length <= 30) {
      this.info(`(${what}) ${text.slice(0, 300)}`);
    }
  }

  fail(msg) {
    this.failures.push(msg);
    this.info(`FAILED: ${msg}`);
  }

  check(cond, msg) {
    if (cond) {
      this.info(`ok: ${msg}`);
    } else {
      this.fail(msg);
    }
    return cond;
  }

  // ms left before the bound, less a margin for closing the clients
  remaining() {
    return this.deadline - Date.now() - 5000;
  }

  budget(ms) {
    return Math.max(0, Math.min(ms, this.remaining()));
  }

  verdict() {
    const t = this.elapsed().toFixed(1);
    if (!this.failures.length) {
      return `PASS ${this.scenario} ${t}s`;
    }
    const head = verbose ? '' : this.lines.join('\n') + '\n';
    return `${head}FAIL ${this.scenario} ${t}s: ${this.failures.join('; ')}`;
  }

  options(extra) {
    return Object.assign({
      httpclient: noHttp,
      nameSrv: this.namesrv,
      logger: this.logger,
      // shorter than the defaults (30 s / 10 s) so that the retry topic's route and a new
      // group member are picked up quickly
      pollNameServerInteval: 5000,
      rebalanceInterval: 5000,
    }, extra);
  }

  // creates topic through the LSMQ_CREATE_TOPIC_CMD hook
  createTopic(topic) {
    const tmpl = process.env.LSMQ_CREATE_TOPIC_CMD;
    if (!tmpl) {
      throw new Error('LSMQ_CREATE_TOPIC_CMD is not set (ali-ons cannot create topics; see run.sh)');
    }
    const cmd = tmpl.split('{topic}').join(topic).split('{namesrv}').join(this.namesrv);
    const t = Date.now();
    try {
      const out = execSync(cmd, { timeout: 30000, stdio: [ 'ignore', 'pipe', 'pipe' ] });
      this.info(`topic ${topic} created (${((Date.now() - t) / 1000).toFixed(1)}s): ${out.toString().trim().split('\n').pop()}`);
    } catch (err) {
      const detail = `${err.stdout || ''}${err.stderr || ''}`.trim().split('\n').slice(-5).join(' | ');
      throw new Error(`topic creation command failed (${cmd}): ${detail || err.message}`);
    }
  }

  async producer(group) {
    const p = new Producer(this.options({ producerGroup: group, instanceName: `p_${group}` }));
    p.on('error', err => this.clientLog('producer error event', [ err ]));
    this.closers.push(() => p.close());
    await p.ready();
    return p;
  }

  // A CLUSTERING push consumer of group, started. instance makes its client id unique in
  // this process; it starts from the first offset when the broker has none for the group.
  async consumer(group, instance, topic, expr, handle) {
    const c = new Consumer(this.options({
      consumerGroup: group,
      instanceName: instance,
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
    }));
    c.on('error', err => this.clientLog(`consumer ${instance} error event`, [ err ]));
    let closed = false;
    const close = async () => {
      if (!closed) {
        closed = true;
        await c.close();
      }
    };
    this.closers.push(close);
    c.subscribe(topic, expr, async msg => handle(msg));
    await c.ready();
    this.info(`consumer ${group}/${instance} subscribed to ${topic} with "${expr}"`);
    return { consumer: c, close };
  }

  async closeAll() {
    const fs = this.closers.reverse();
    this.closers = [];
    for (const f of fs) {
      await Promise.race([ Promise.resolve().then(f).catch(() => {}), sleep(5000) ]);
    }
  }
}

// ---------------------------------------------------------------- records

function rec(who, msg) {
  const keys = msg.keys || '';
  return {
    who,
    topic: msg.topic,
    tags: msg.tags,
    keys,
    key: keys.split(' ')[0],
    body: msg.body ? msg.body.toString() : '',
    idx: msg.properties && msg.properties[IDX_PROP],
    msgId: msg.msgId,
    queueId: msg.queueId,
    queueOffset: Number(msg.queueOffset),
    reconsumeTimes: msg.reconsumeTimes,
    retryTopic: msg.properties && msg.properties.RETRY_TOPIC,
    originMsgId: msg.properties && msg.properties.ORIGIN_MESSAGE_ID,
    uniqKey: msg.properties && msg.properties.UNIQ_KEY,
    storeHost: msg.storeHost,
    at: Date.now(),
  };
}

function show(r) {
  return `{${r.who} topic=${r.topic} q=${r.queueId} off=${r.queueOffset} tags=${r.tags} keys="${r.keys}" idx=${r.idx} msgId=${r.msgId} reconsume=${r.reconsumeTimes}}`;
}

class Log {
  constructor() {
    this.recs = [];
  }

  add(r) {
    this.recs.push(r);
  }

  distinctIn(sent) {
    const seen = new Set();
    for (const r of this.recs) {
      if (sent.has(r.key)) {
        seen.add(r.key);
      }
    }
    return seen.size;
  }
}

async function waitFor(ms, cond) {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) {
      return true;
    }
    if (Date.now() > end) {
      return false;
    }
    await sleep(50);
  }
}

// Sends count messages one by one (tag from tagOf, two keys, a user property); returns
// key -> sent for the acknowledged ones.
async function sendMany(ctx, p, topic, prefix, count, tagOf) {
  const sent = new Map();
  const perQueue = {};
  let errors = 0;
  const t = Date.now();
  for (let i = 0; i < count; i++) {
    const key = `${prefix}${i}_${ctx.runId}`;
    const alt = `alt${i}_${ctx.runId}`;
    const tags = tagOf(i);
    const body = `body of ${key} tagged ${tags}`;
    const msg = new Message(topic, tags, body);
    msg.keys = [ key, alt ];
    msg.properties[IDX_PROP] = String(i);
    try {
      let res;
      for (let attempt = 1; ; attempt++) {
        try {
          res = await p.send(msg);
          break;
        } catch (err) {
          // SYSTEM_BUSY (2) is load shedding ("broker busy"); ali-ons does not retry it itself
          if (err.code !== 2 || attempt === 3) throw err;
          ctx.info(`send ${key}: broker busy (${err.message}); sending again`);
          await sleep(200);
        }
      }
      if (res.sendStatus !== 'SEND_OK') {
        ctx.fail(`send ${key}: status ${res.sendStatus}`);
        errors++;
      } else {
        sent.set(key, { idx: i, key, keys: `${key} ${alt}`, tags, body, res });
        perQueue[res.messageQueue.queueId] = (perQueue[res.messageQueue.queueId] || 0) + 1;
      }
    } catch (err) {
      ctx.fail(`send ${key}: ${err.name}: ${err.message}`);
      errors++;
    }
    if (errors > 3) {
      throw new Error(`too many send errors, gave up after ${i + 1} messages`);
    }
  }
  ctx.info(`sent ${sent.size}/${count} messages to ${topic} in ${((Date.now() - t) / 1000).toFixed(2)}s; per queue ${JSON.stringify(perQueue)}`);
  return sent;
}

// Compares a delivery with what was sent. firstDelivery: also the queue, offset and
// msgId the send result named (ali-ons' msgId is the broker's offset message id, which
// the client recomputes from STOREHOST and PHYSICALOFFSET on delivery).
function checkContent(r, s, topic, firstDelivery) {
  const p = [];
  if (r.topic !== topic) p.push(`topic ${r.topic} != ${topic} in ${show(r)}`);
  if (r.tags !== s.tags) p.push(`tags ${r.tags} != ${s.tags} in ${show(r)}`);
  if (r.keys !== s.keys) p.push(`keys "${r.keys}" != "${s.keys}" in ${show(r)}`);
  if (r.body !== s.body) p.push(`body "${r.body}" != "${s.body}" in ${show(r)}`);
  if (r.idx !== String(s.idx)) p.push(`user property ${IDX_PROP}=${r.idx} != ${s.idx} in ${show(r)}`);
  if (firstDelivery) {
    if (Number(r.queueId) !== Number(s.res.messageQueue.queueId) || r.queueOffset !== s.res.queueOffset) {
      p.push(`delivered from queue ${r.queueId} offset ${r.queueOffset}, the send result said queue ${s.res.messageQueue.queueId} offset ${s.res.queueOffset}: ${show(r)}`);
    }
    if (r.msgId !== s.res.msgId) {
      p.push(`msgId ${r.msgId} (from STOREHOST and PHYSICALOFFSET) != send response msgId ${s.res.msgId}: ${show(r)}`);
    }
  }
  return p;
}

function report(ctx, what, problems) {
  if (!problems.length) {
    ctx.info(`ok: ${what}`);
    return;
  }
  ctx.fail(`${what} (${problems.length} problems): ${problems.slice(0, 4).join('; ')}`);
}

// ---------------------------------------------------------------- produce-consume

// TagA/TagB messages with two keys and a user property each; a consumer subscribed to
// "TagA" must get exactly the TagA ones, intact.
async function produceConsume(ctx) {
  const n = 20;
  const topic = ctx.name('pc');
  const group = ctx.name('pcC');
  ctx.createTopic(topic);
  const p = await ctx.producer(ctx.name('pcP'));
  const sent = await sendMany(ctx, p, topic, 'pc', n, i => (i % 2 === 0 ? 'TagA' : 'TagB'));
  ctx.check(sent.size === n, `all ${n} sends acknowledged SEND_OK (${sent.size})`);
  const tagA = new Map([ ...sent ].filter(([ , s ]) => s.tags === 'TagA'));

  const log = new Log();
  await ctx.consumer(group, `${group}_1`, topic, 'TagA', msg => { log.add(rec('c1', msg)); });
  const all = await waitFor(ctx.budget(40000), () => log.distinctIn(tagA) === tagA.size);
  ctx.check(all, `TagA subscriber received all ${tagA.size} TagA messages (${log.distinctIn(tagA)} distinct)`);
  await sleep(ctx.budget(3000)); // anything unexpected arriving late shows up here

  const problems = [];
  const seen = new Map();
  let other = 0;
  let dups = 0;
  for (const r of log.recs) {
    const s = tagA.get(r.key);
    if (!s) {
      other++;
      problems.push(`unexpected delivery ${show(r)}`);
      continue;
    }
    seen.set(r.key, (seen.get(r.key) || 0) + 1);
    if (seen.get(r.key) === 2) dups++;
    problems.push(...checkContent(r, s, topic, true));
  }
  ctx.check(other === 0, `no TagB or unknown message reached the TagA subscriber (${other})`);
  ctx.check(dups === 0, `no TagA message delivered twice (${dups})`);
  report(ctx, 'topic, tags, keys, body, user property, queue, offset and msgId of every delivery match the send', problems);
}

// ---------------------------------------------------------------- clustering

// Two members of one group (ali-ons ignores NOTIFY_CONSUMER_IDS_CHANGED, so they find each
// other by their periodic rebalance); rounds of messages are sent until one round is split
// between them on disjoint queues. No message of any round may be lost.
async function clustering(ctx) {
  const topic = ctx.name('cl');
  const group = ctx.name('clC');
  ctx.createTopic(topic);
  const p = await ctx.producer(ctx.name('clP'));
  const logs = { A: new Log(), B: new Log() };
  for (const who of [ 'A', 'B' ]) {
    await ctx.consumer(group, `${group}_${who}`, topic, '*', msg => { logs[who].add(rec(who, msg)); });
  }

  const all = new Map();
  let settled = false;
  for (let round = 1; !settled; round++) {
    if (ctx.remaining() < 12000) break;
    const sent = await sendMany(ctx, p, topic, `r${round}_`, 16, i => `T${i % 3}`);
    for (const [ k, s ] of sent) all.set(k, s);
    const got = await waitFor(ctx.budget(10000), () => logs.A.distinctIn(sent) + logs.B.distinctIn(sent) >= sent.size);
    await sleep(500);
    const q = { A: new Set(), B: new Set() };
    const cnt = { A: 0, B: 0 };
    for (const who of [ 'A', 'B' ]) {
      for (const r of logs[who].recs) {
        if (sent.has(r.key)) {
          q[who].add(r.queueId);
          cnt[who]++;
        }
      }
    }
    const disjoint = [ ...q.A ].every(x => !q.B.has(x));
    ctx.info(`round ${round}: all delivered=${got}; A got ${cnt.A} from queues [${[ ...q.A ].sort()}], B got ${cnt.B} from queues [${[ ...q.B ].sort()}]`);
    settled = got && cnt.A > 0 && cnt.B > 0 && disjoint && cnt.A + cnt.B === sent.size;
    if (!settled) await sleep(1000);
  }
  ctx.check(settled, 'a round of messages was split between both members on disjoint queues, each message once');

  const union = () => new Set([ ...logs.A.recs, ...logs.B.recs ].map(r => r.key).filter(k => all.has(k))).size;
  await waitFor(ctx.budget(5000), () => union() === all.size);
  const lost = all.size - union();
  ctx.check(lost === 0, `no message lost: ${all.size - lost} of ${all.size} delivered to some member`);
  const problems = [];
  for (const r of [ ...logs.A.recs, ...logs.B.recs ]) {
    const s = all.get(r.key);
    if (s) problems.push(...checkContent(r, s, topic, true));
  }
  report(ctx, 'content of every delivery matches the send', problems);
}

// ---------------------------------------------------------------- offset-resume

// Member 1 consumes a first batch and closes (ali-ons commits offsets with oneway
// UPDATE_CONSUMER_OFFSET every 5 s and on close); a second batch is sent while the group
// has no member; member 2, which would start from offset 0 if the broker had no offset,
// must get the second batch and none of the first.
async function offsetResume(ctx) {
  const n1 = 20;
  const n2 = 20;
  const topic = ctx.name('or');
  const group = ctx.name('orC');
  ctx.createTopic(topic);
  const p = await ctx.producer(ctx.name('orP'));
  const first = await sendMany(ctx, p, topic, 'first', n1, () => 'First');
  ctx.check(first.size === n1, `first batch: ${n1} sends acknowledged (${first.size})`);

  const log1 = new Log();
  const c1 = await ctx.consumer(group, `${group}_1`, topic, '*', msg => { log1.add(rec('c1', msg)); });
  const all1 = await waitFor(ctx.budget(25000), () => log1.distinctIn(first) === n1);
  ctx.check(all1, `member 1 received the first batch (${log1.distinctIn(first)}/${n1})`);
  await sleep(1500); // the in-memory offsets advance right after the handler returns
  const t = Date.now();
  await c1.close();
  ctx.info(`member 1 closed in ${((Date.now() - t) / 1000).toFixed(2)}s (offsets committed on close)`);

  const second = await sendMany(ctx, p, topic, 'second', n2, () => 'Second');
  ctx.check(second.size === n2, `second batch: ${n2} sends acknowledged (${second.size})`);
  const log2 = new Log();
  await ctx.consumer(group, `${group}_2`, topic, '*', msg => { log2.add(rec('c2', msg)); });
  const all2 = await waitFor(ctx.budget(25000), () => log2.distinctIn(second) === n2);
  ctx.check(all2, `member 2 received the whole second batch (${log2.distinctIn(second)}/${n2})`);
  await sleep(ctx.budget(2000));
  const again = log2.distinctIn(first);
  ctx.check(again === 0, `member 2 resumed from the committed offsets: ${again} first-batch messages redelivered`);
  const problems = [];
  for (const r of log2.recs) {
    const s = second.get(r.key);
    if (s) problems.push(...checkContent(r, s, topic, true));
  }
  report(ctx, 'content of every delivery to member 2 matches the send', problems);
}

// ---------------------------------------------------------------- delays

// The broker's delay table: LSMQ_DELAY_LEVELS (what against-lsmq.sh starts it with),
// upstream's default otherwise. A delivery may come no earlier than its due time minus
// DELAY_TOLERANCE_MS (LSMQ_DELAY_TOLERANCE_MS, default 50) and no later than LATE_MS after it.
const UPSTREAM_LEVELS = '1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h';
const DELAY_TOLERANCE_MS = Number(process.env.LSMQ_DELAY_TOLERANCE_MS || 50);
const LATE_MS = 10000;

function levelMs(level) {
  const parts = (process.env.LSMQ_DELAY_LEVELS || UPSTREAM_LEVELS).trim().split(/ +/);
  const p = parts[Math.min(level, parts.length) - 1];
  const unit = { s: 1000, m: 60000, h: 3600000, d: 86400000 }[p.slice(-1)];
  if (!unit) throw new Error(`bad delay level ${p}`);
  return Number(p.slice(0, -1)) * unit;
}

// Sends n messages to a new topic, each made delayed by delay(msg, i) (which returns its
// due time), with a consumer already running; each must arrive once, not before its due
// time, with its body and keys.
async function delayedRoundTrip(ctx, kind, n, delay) {
  const topic = ctx.name(kind);
  ctx.createTopic(topic);
  const p = await ctx.producer(ctx.name(`${kind}P`));
  const log = new Log();
  const warm = `warm_${ctx.runId}`;
  await ctx.consumer(ctx.name(`${kind}C`), `${ctx.name(`${kind}C`)}_1`, topic, '*', msg => {
    log.add(rec('c', msg));
    return undefined;
  });
  const w = new Message(topic, 'TagW', 'warm-up');
  w.keys = [ warm ];
  await p.send(w);
  ctx.check(await waitFor(ctx.budget(20000), () => log.recs.some(r => r.key === warm)),
    'the consumer is running (warm-up received)');
  const due = new Map();
  for (let i = 0; i < n; i++) {
    const key = `${kind}${i}_${ctx.runId}`;
    const msg = new Message(topic, 'TagD', `delayed ${key}`);
    msg.keys = [ key ];
    const at = delay(msg, i);
    const res = await p.send(msg);
    ctx.check(res.sendStatus === 'SEND_OK', `send of ${key} due ${at}: ${res.sendStatus}`);
    due.set(key, at);
  }
  const last = Math.max(...due.values());
  const all = await waitFor(ctx.budget(last - Date.now() + LATE_MS),
    () => [ ...due.keys() ].every(k => log.recs.some(r => r.key === k)));
  await sleep(ctx.budget(1500));
  ctx.check(all, `all ${n} delayed messages delivered`);
  const problems = [];
  for (const [ key, at ] of due) {
    const rs = log.recs.filter(r => r.key === key);
    if (rs.length !== 1) {
      problems.push(`${key} delivered ${rs.length} times`);
      continue;
    }
    const r = rs[0];
    ctx.info(`${key} received ${r.at - at} ms after its due time`);
    if (r.at < at - DELAY_TOLERANCE_MS) problems.push(`${key} received ${at - r.at} ms before its due time`);
    if (r.at > at + LATE_MS) problems.push(`${key} received ${r.at - at} ms after its due time`);
    if (r.topic !== topic || r.body !== `delayed ${key}`) problems.push(`${key} delivered as ${show(r)}`);
  }
  report(ctx, 'each delayed message delivered once, not before its due time', problems);
}

// Message#delayTimeLevel (the DELAY property).
async function delayLevelScenario(ctx) {
  const level = 2;
  await delayedRoundTrip(ctx, 'dl', 3, msg => {
    msg.delayTimeLevel = level;
    return Date.now() + levelMs(level);
  });
}

// Message#setStartDeliverTime (Aliyun's __STARTDELIVERTIME, absolute ms).
async function startDeliverTime(ctx) {
  await delayedRoundTrip(ctx, 'sd', 4, (msg, i) => {
    const at = Date.now() + 2000 + 311 * i;
    msg.setStartDeliverTime(at);
    return at;
  });
}

// ---------------------------------------------------------------- retry

// The handler returns ACTION_RETRY the first time it sees each message. ali-ons sends it
// back with CONSUMER_SEND_MSG_BACK delayLevel 0 (the broker chooses: level 3, 10 s in
// upstream's table); it must come back from %RETRY%<group> after that back-off (not at
// once) with reconsumeTimes 1, RETRY_TOPIC = the original topic (ali-ons dispatches by it)
// and the same body, tags, keys and properties.
async function retry(ctx) {
  const n = 2;
  const topic = ctx.name('rt');
  const group = ctx.name('rtC');
  ctx.createTopic(topic);
  const p = await ctx.producer(ctx.name('rtP'));
  const sent = await sendMany(ctx, p, topic, 'retry', n, () => 'TagR');
  ctx.check(sent.size === n, `${n} sends acknowledged (${sent.size})`);

  const log = new Log();
  const calls = new Map();
  await ctx.consumer(group, `${group}_1`, topic, '*', msg => {
    const r = rec('c', msg);
    if (!sent.has(r.key)) return undefined; // e.g. a message the topic-creation hook sent
    log.add(r);
    calls.set(r.key, (calls.get(r.key) || 0) + 1);
    return calls.get(r.key) === 1 ? Consumer.ACTION_RETRY : undefined;
  });
  const t0 = Date.now();
  const redelivered = await waitFor(ctx.budget(45000), () => {
    const done = new Set(log.recs.filter(r => r.reconsumeTimes >= 1).map(r => r.key));
    return [ ...sent.keys() ].every(k => done.has(k));
  });
  ctx.info(`waited ${((Date.now() - t0) / 1000).toFixed(1)}s for redelivery`);
  await sleep(ctx.budget(1500));
  ctx.check(redelivered, 'every message answered ACTION_RETRY was redelivered with reconsumeTimes >= 1');

  const problems = [];
  for (const s of sent.values()) {
    const rs = log.recs.filter(r => r.key === s.key);
    if (!rs.length) {
      problems.push(`${s.key} never delivered`);
      continue;
    }
    const [ r0, r1 ] = rs;
    if (r0.reconsumeTimes !== 0) problems.push(`first delivery has reconsumeTimes ${r0.reconsumeTimes}`);
    problems.push(...checkContent(r0, s, topic, true));
    if (!r1) continue;
    ctx.info(`${s.key} redelivered ${((r1.at - r0.at) / 1000).toFixed(1)}s after the first delivery: reconsumeTimes=${r1.reconsumeTimes} RETRY_TOPIC=${r1.retryTopic} ORIGIN_MESSAGE_ID=${r1.originMsgId} msgId=${r1.msgId} queue=${r1.queueId}`);
    const backoff = levelMs(3);
    if (r1.at - r0.at < backoff - DELAY_TOLERANCE_MS || r1.at - r0.at > backoff + LATE_MS) {
      problems.push(`${s.key} redelivered ${r1.at - r0.at} ms after the first delivery, the back-off is ${backoff} ms`);
    }
    if (r1.reconsumeTimes !== 1) problems.push(`first redelivery has reconsumeTimes ${r1.reconsumeTimes} (expected 1)`);
    problems.push(...checkContent(r1, s, topic, false));
    if (r1.retryTopic !== topic) problems.push(`redelivery's RETRY_TOPIC is ${r1.retryTopic}, expected ${topic}`);
    if (r1.originMsgId !== s.res.msgId) problems.push(`redelivery's ORIGIN_MESSAGE_ID ${r1.originMsgId} != the original msgId ${s.res.msgId}`);
    if (rs.length > 2) problems.push(`${s.key} delivered ${rs.length} times although the redelivery succeeded`);
  }
  report(ctx, 'first delivery and redelivery carry the original topic, tags, keys, body and properties', problems);
}

// ---------------------------------------------------------------- reset-by-time

// What `mqadmin resetOffsetByTime -f true` does: INVOKE_BROKER_TO_RESET_OFFSET to every
// master of the topic. Where a broker answers CONSUMER_NOT_ONLINE (upstream brokers do when
// the group has no member online) the offsets are committed directly, as mqadmin's fallback
// (ResetOffsetByTimeOldCommand) does: SEARCH_OFFSET_BY_TIMESTAMP, then UPDATE_CONSUMER_OFFSET.
// client: an ali-ons MQClient (the producer's), whose remoting layer carries the requests.
async function resetByTime(ctx, client, topic, group, timestamp) {
  const route = await client.getTopicRouteInfoFromNameServer(topic, 3000);
  for (const bd of route.brokerDatas) {
    const addr = bd.brokerAddrs['0'];
    const req = RemotingCommand.createRequestCommand(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, {
      topic, group, timestamp: String(timestamp), isForce: 'true',
    });
    const res = await client.invoke(addr, req, 5000);
    if (res.code === ResponseCode.SUCCESS) {
      ctx.info(`broker ${bd.brokerName} reset ${group}: ${res.body ? res.body.toString() : '(no body)'}`);
      continue;
    }
    if (res.code !== ResponseCode.CONSUMER_NOT_ONLINE) {
      throw new Error(`INVOKE_BROKER_TO_RESET_OFFSET to ${addr}: code ${res.code} ${res.remark}`);
    }
    const qd = route.queueDatas.find(q => q.brokerName === bd.brokerName);
    for (let q = 0; q < qd.readQueueNums; q++) {
      const off = await client.searchOffset(addr, topic, String(q), String(timestamp), 3000);
      await client.updateConsumerOffsetOneway(addr, { consumerGroup: group, topic, queueId: String(q), commitOffset: String(off) });
    }
    ctx.info(`broker ${bd.brokerName}: group offline (CONSUMER_NOT_ONLINE); offsets committed directly`);
  }
}

// Retroactive consumption with a client that ignores RESET_CONSUMER_CLIENT_OFFSET: a member
// consumes two batches stored before and after an instant T and closes; the group's offsets
// are reset to T; a restarted member must get exactly the second batch, each queue starting
// at its first message stored at or after T.
async function resetByTimeScenario(ctx) {
  const n = 10;
  const topic = ctx.name('rs');
  const group = ctx.name('rsC');
  ctx.createTopic(topic);
  const p = await ctx.producer(ctx.name('rsP'));
  const before = await sendMany(ctx, p, topic, 'before', n, () => 'Before');
  await sleep(50);
  const t = Date.now();
  await sleep(50);
  const after = await sendMany(ctx, p, topic, 'after', n, () => 'After');
  ctx.check(before.size === n && after.size === n, `both batches acknowledged (${before.size}, ${after.size})`);

  const log1 = new Log();
  const c1 = await ctx.consumer(group, `${group}_1`, topic, '*', msg => { log1.add(rec('c1', msg)); });
  const all1 = await waitFor(ctx.budget(25000), () => log1.distinctIn(before) + log1.distinctIn(after) === 2 * n);
  ctx.check(all1, `member 1 received both batches (${log1.distinctIn(before) + log1.distinctIn(after)}/${2 * n})`);
  await sleep(1000); // the in-memory offsets advance right after the handler returns
  await c1.close();

  await resetByTime(ctx, p._mqClient, topic, group, t);
  const log2 = new Log();
  await ctx.consumer(group, `${group}_2`, topic, '*', msg => { log2.add(rec('c2', msg)); });
  const all2 = await waitFor(ctx.budget(25000), () => log2.distinctIn(after) === n);
  ctx.check(all2, `member 2 received the batch stored after T again (${log2.distinctIn(after)}/${n})`);
  await sleep(ctx.budget(1500));

  const firstAfter = {};
  for (const s of after.values()) {
    const q = s.res.messageQueue.queueId;
    if (firstAfter[q] === undefined || s.res.queueOffset < firstAfter[q]) firstAfter[q] = s.res.queueOffset;
  }
  const problems = [];
  const started = {};
  for (const r of log2.recs) {
    const s = after.get(r.key);
    if (!s) {
      problems.push(`delivery from before T: ${show(r)}`);
      continue;
    }
    if (started[r.queueId] === undefined) {
      started[r.queueId] = r.queueOffset;
      if (r.queueOffset !== firstAfter[r.queueId]) {
        problems.push(`queue ${r.queueId} resumed at offset ${r.queueOffset}, its first message stored after T is at ${firstAfter[r.queueId]}`);
      }
    }
    problems.push(...checkContent(r, s, topic, true));
  }
  report(ctx, 'member 2 resumed each queue at its first message stored at or after T, nothing earlier', problems);
}

// ---------------------------------------------------------------- main

const scenarios = {
  'produce-consume': [ produceConsume, 'tags and keys round trip; a TagA subscriber gets exactly the TagA messages' ],
  clustering: [ clustering, 'two members of one group share the queues without loss' ],
  'offset-resume': [ offsetResume, 'a restarted member of the group resumes from the committed offsets' ],
  retry: [ retry, 'a message answered ACTION_RETRY comes back through %RETRY%<group>' ],
  'delay-level': [ delayLevelScenario, 'a delayTimeLevel send arrives once, not before its delay' ],
  'start-deliver-time': [ startDeliverTime, 'a setStartDeliverTime send arrives once, not before its time' ],
  'reset-by-time': [ resetByTimeScenario, 'a group reset to an instant resumes at the first message stored after it' ],
};

async function main() {
  const arg = process.argv[2];
  if (arg === '--list') {
    for (const [ name, [ , desc ] ] of Object.entries(scenarios)) console.log(`${name.padEnd(16)} ${desc}`);
    return 0;
  }
  if (!arg || !scenarios[arg]) {
    console.error(`usage: NAMESRV=host:port node interop.js SCENARIO (one of: ${Object.keys(scenarios).join(' ')})`);
    return 2;
  }
  const namesrv = process.env.NAMESRV || process.env.NAMESRV_ADDR;
  if (!namesrv) {
    console.error('interop: NAMESRV is not set');
    return 2;
  }
  const timeoutMs = Number(process.env.LSMQ_INTEROP_TIMEOUT || 58) * 1000;
  const ctx = new Ctx(arg, namesrv, timeoutMs);
  const watchdog = setTimeout(() => {
    ctx.fail(`did not finish within ${timeoutMs / 1000}s`);
    console.log(ctx.verdict());
    process.exit(1);
  }, timeoutMs);
  try {
    await scenarios[arg][0](ctx);
  } catch (err) {
    ctx.fail(`${err.name}: ${err.message}`);
  }
  await ctx.closeAll();
  clearTimeout(watchdog);
  if (ctx.clientErrors.length) {
    ctx.info(`the client logged ${ctx.clientErrors.length} warnings/errors (shown above, first 30)`);
  }
  console.log(ctx.verdict());
  return ctx.failures.length ? 1 : 0;
}

process.on('unhandledRejection', err => {
  console.error('interop: unhandled rejection:', err);
});

main().then(code => process.exit(code), err => {
  console.error(err);
  process.exit(1);
});
