// A Fluent forward sender for tests/forward: Fluentd's fluent-logger for
// Node.js (pinned in package.json and package-lock.json beside this file),
// with requireAckResponse, so that each emit's callback runs only once the
// receiver has acknowledged its chunk.
//
// usage: node sender.js PLAN.json
// PLAN: {"port": N, "mode": "Message"|"PackedForward"|"CompressedPackedForward",
//        "tag_prefix": "...", "records": [{"label": "...", "data": {...}}],
//        "shared_key": "..." (optional)}
// Prints one JSON line: {"acked": N, "errors": ["..."]}.
'use strict';

const fs = require('fs');
const logger = require('fluent-logger');

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const options = {
  host: '127.0.0.1',
  port: plan.port,
  timeout: 10.0,
  requireAckResponse: true,
  ackResponseTimeout: 20000,
  eventMode: plan.mode,
  flushInterval: 20,
  enableReconnect: false,
  internalLogger: { info() {}, error() {} },
};
if (plan.shared_key) {
  options.security = { clientHostname: 'npm-sender', sharedKey: plan.shared_key };
}
const sender = logger.createFluentSender(plan.tag_prefix, options);
let acked = 0;
const errors = [];
let pending = plan.records.length;
sender.on('error', (error) => errors.push(String(error)));
for (const record of plan.records) {
  sender.emit(record.label, record.data, logger.EventTime.now(), (error) => {
    if (error) {
      errors.push(String(error));
    } else {
      acked += 1;
    }
    pending -= 1;
    if (pending === 0) {
      console.log(JSON.stringify({ acked, errors }));
      sender.end();
      process.exit(0);
    }
  });
}
setTimeout(() => {
  console.log(JSON.stringify({ acked, errors: errors.concat(['timed out']) }));
  process.exit(0);
}, 60000);
