#!/usr/bin/env node
// Run inside the test's network namespace before the platform starts: tries to reach the outside
// (TCP to each host:port given, and a DNS lookup) and prints what happened as JSON. In a loopback-only
// namespace every attempt must fail; if one succeeds the sandbox is not real and the test fails.
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';

function tryConnect(target) {
  const at = target.lastIndexOf(':');
  const [host, port] = [target.slice(0, at), Number(target.slice(at + 1))];
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 3_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ target, connected: true, code: null });
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ target, connected: false, code: 'TIMEOUT' });
    });
    socket.once('error', (error) => resolve({ target, connected: false, code: error.code ?? error.message }));
  });
}

const connections = [];
for (const target of process.argv.slice(2)) connections.push(await tryConnect(target));
const dns = await lookup('registry.npmjs.org').then(
  (answer) => ({ resolved: true, code: null, address: answer.address }),
  (error) => ({ resolved: false, code: error.code ?? error.message }),
);
process.stdout.write(`${JSON.stringify({ connections, dns })}\n`);
