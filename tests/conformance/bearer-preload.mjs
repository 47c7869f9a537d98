// Loaded into the conformance suite's process (`node --import`) when it runs
// through the companion: the suite has no way to send a bearer token in
// server mode, and the companion serves nobody without one. Every HTTP
// request the process makes to SPOR_CONFORMANCE_ORIGIN — through fetch
// (the SDK transports, the suite's raw requests), undici's `request` (the
// DNS-rebinding probes) and node:http (the header-validation probes) — gets
// `Authorization: Bearer $SPOR_CONFORMANCE_BEARER` added, as a host holding
// an access token would send it. Nothing else about a request changes.
import http from 'node:http';
import { Agent, setGlobalDispatcher } from 'undici';

const origin = process.env.SPOR_CONFORMANCE_ORIGIN;
const bearer = process.env.SPOR_CONFORMANCE_BEARER;
if (!origin || !bearer) throw new Error('bearer-preload: SPOR_CONFORMANCE_ORIGIN and SPOR_CONFORMANCE_BEARER are required');

/** `headers` (any form undici accepts) with the bearer added, unless one is there. */
function withBearer(headers) {
  const pairs = [];
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) pairs.push(...headers);
    else for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
  } else if (headers && typeof headers[Symbol.iterator] === 'function') {
    pairs.push(...headers);
  } else if (headers) {
    pairs.push(...Object.entries(headers));
  }
  if (!pairs.some(([k]) => String(k).toLowerCase() === 'authorization')) {
    pairs.push(['authorization', `Bearer ${bearer}`]);
  }
  return pairs.flat();
}

const agent = new Agent().compose((dispatch) => (opts, handler) => {
  if (String(opts.origin) === origin) opts = { ...opts, headers: withBearer(opts.headers) };
  return dispatch(opts, handler);
});
// One global dispatcher serves Node's fetch and the undici package alike.
setGlobalDispatcher(agent);

// node:http, called as http.request(options[, callback]).
const target = new URL(origin);
const plainRequest = http.request;
http.request = function request(options, ...rest) {
  if (options && typeof options === 'object' && !(options instanceof URL)) {
    const host = options.hostname ?? options.host;
    if (host === target.hostname && String(options.port) === target.port) {
      const headers = { ...(options.headers ?? {}) };
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) {
        headers.authorization = `Bearer ${bearer}`;
      }
      options = { ...options, headers };
    }
  }
  return plainRequest.call(this, options, ...rest);
};
