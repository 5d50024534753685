// An independent BACnet/IP client (bacnet-js, @bacnet-js/client) run against openmeg's served BAS.
// Usage: node probe.js '<plan json>'; the plan: {"host", "port", "timeout_ms", "ops": [...]} where
// each op is {"op": "read", "object": ["ANALOG_VALUE", 7], "property": "PRESENT_VALUE"},
// {"op": "readMultiple", "objects": [[type, instance], ...], "properties": ["PRESENT_VALUE", ...]}
// or {"op": "write", "object": [...], "tag": "REAL", "value": 21.5}.
// Prints one JSON line per op: {"ok": true, "values": [...]} or {"ok": false, "error": "..."}.
'use strict';
const dgram = require('dgram');
const bacnet = require('@bacnet-js/client');
const Client = bacnet.default;
const { ObjectType, PropertyIdentifier, ApplicationTag } = bacnet;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function objectId([type, instance]) {
  if (ObjectType[type] === undefined) throw new Error(`unknown object type ${type}`);
  return { type: ObjectType[type], instance };
}

function property(name) {
  if (PropertyIdentifier[name] === undefined) throw new Error(`unknown property ${name}`);
  return PropertyIdentifier[name];
}

function plain(values) {
  return values.map((v) => (v && typeof v === 'object' && 'value' in v ? plain1(v.value) : v));
}

function plain1(v) {
  if (v && typeof v === 'object' && 'value' in v && 'bitsUsed' in v) return v.value;
  return v;
}

async function run(client, receiver, op) {
  if (op.op === 'read') {
    const r = await client.readProperty(receiver, objectId(op.object), property(op.property));
    return plain(r.values);
  }
  if (op.op === 'readMultiple') {
    const props = op.properties.map((p) => ({ id: property(p) }));
    const spec = op.objects.map((o) => ({ objectId: objectId(o), properties: props }));
    const r = await client.readPropertyMultiple(receiver, spec);
    return r.values.map((obj) => obj.values.map((p) => plain(p.value)));
  }
  if (op.op === 'write') {
    const tag = ApplicationTag[op.tag];
    await client.writeProperty(receiver, objectId(op.object), PropertyIdentifier.PRESENT_VALUE,
      [{ type: tag, value: op.value === 'NaN' ? NaN : op.value }], {});
    return [];
  }
  throw new Error(`unknown op ${op.op}`);
}

async function main() {
  const plan = JSON.parse(process.argv[2]);
  const port = await freePort();
  const client = new Client({ port, interface: '127.0.0.1', apduTimeout: plan.timeout_ms || 3000 });
  client.on('error', (err) => { console.error(`bacnet-js: ${err.message}`); });
  const receiver = { address: `${plan.host}:${plan.port}` };
  try {
    for (const op of plan.ops) {
      try {
        console.log(JSON.stringify({ ok: true, values: await run(client, receiver, op) }));
      } catch (err) {
        console.log(JSON.stringify({ ok: false, error: err.message }));
      }
    }
  } finally {
    client.close();
  }
}

main().catch((err) => { console.error(err); process.exit(2); });
