// Sends the verification and password-reset emails through an HTTP email API.
//
// Config (hooks.toml): `url` (the API endpoint, required), `verify_url` and `reset_url` (the pages
// that take `?token=`; optional). Secret: `api_key`, sent as `Authorization: Bearer ...`. The event
// id goes in `Idempotency-Key`, so the API can drop the duplicates that at-least-once delivery may
// produce.
//
// One source for both JavaScript engines: QuickJS (jco --backend qjs) and SpiderMonkey
// (componentize-js). So it uses only plain ECMAScript and the WIT imports: no fetch, no
// TextEncoder (QuickJS has neither).

import * as host from 'hookauth:hooks/host@0.1.0';
import * as outgoing from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingBody, OutgoingRequest } from 'wasi:http/types@0.2.12';

const EMAILS = {
  'send-verification-email': {
    template: 'verify-email',
    subject: 'Verify your email',
    page: 'verify_url',
    defaultPage: 'https://example.com/verify',
  },
  'send-password-reset-email': {
    template: 'reset-password',
    subject: 'Reset your password',
    page: 'reset_url',
    defaultPage: 'https://example.com/reset-password',
  },
};

export const handler = {
  register() {
    return {
      events: Object.keys(EMAILS),
      config: ['url'],
      secrets: ['api_key'],
    };
  },

  handle(event) {
    const kind = EMAILS[event.payload.tag];
    if (!kind) return; // not subscribed: the host never sends anything else
    const { email, token } = event.payload.val;
    const page = host.configGet(kind.page) ?? kind.defaultPage;
    const body = JSON.stringify({
      to: email,
      template: kind.template,
      subject: kind.subject,
      link: `${page}?token=${encodeURIComponent(token)}`,
    });

    const url = host.configGet('url');
    if (url == null) throw 'config `url` is not set';
    const key = host.secretGet('api_key');
    if (key == null) throw 'secret `api_key` is not set';

    const status = postJson(url, [
      ['authorization', `Bearer ${key}`],
      ['idempotency-key', event.context.eventId],
    ], body);
    if (status < 200 || status > 299) throw `email API answered ${status}`;
    host.log('info', 'email sent', [
      ['event_id', event.context.eventId],
      ['template', kind.template],
    ]);
  },
};

// A blocking JSON POST over wasi:http/outgoing-handler; returns the response status. The host
// lets it through only to the hosts in this hook's `allowed_hosts`.
function postJson(url, headers, json) {
  const m = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw `url ${JSON.stringify(url)} is not http(s)`;
  const [, scheme, authority, path = '/'] = m;

  const fields = Fields.fromList(
    [['content-type', 'application/json'], ...headers].map(([k, v]) => [k, utf8(v)]),
  );
  const request = new OutgoingRequest(fields);
  request.setMethod({ tag: 'post' });
  request.setScheme({ tag: scheme.toUpperCase() }); // the WIT cases are HTTP and HTTPS
  request.setAuthority(authority);
  request.setPathWithQuery(path);

  const body = request.body();
  const stream = body.write();
  const bytes = utf8(json);
  // blocking-write-and-flush takes at most 4096 bytes per call.
  for (let i = 0; i < bytes.length; i += 4096) {
    stream.blockingWriteAndFlush(bytes.subarray(i, i + 4096));
  }
  stream[Symbol.dispose](); // the stream must be gone before the body is finished
  OutgoingBody.finish(body);

  let pending;
  try {
    pending = outgoing.handle(request);
  } catch (e) {
    throw `POST ${url}: ${describe(e)}`;
  }
  let response = pending.get();
  while (response == null) {
    pending.subscribe().block();
    response = pending.get();
  }
  // option<result<result<incoming-response, error-code>>>: unwrap both results.
  for (let i = 0; i < 2; i++) {
    if (response && typeof response === 'object' && 'tag' in response) {
      if (response.tag === 'err') throw `POST ${url}: ${describe(response.val)}`;
      response = response.val;
    }
  }
  return response.status();
}

// Errors from wasi:http are variants such as {tag: 'HTTP-request-denied'}.
function describe(e) {
  if (e && typeof e === 'object') {
    const inner = 'payload' in e ? e.payload : e;
    if (inner && typeof inner === 'object' && 'tag' in inner) return String(inner.tag);
    try {
      return JSON.stringify(inner);
    } catch {
      return String(inner);
    }
  }
  return String(e);
}

function utf8(s) {
  const out = [];
  for (const ch of s) {
    let c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}
