// Sends the verification and password-reset emails through an HTTP email API.
//
// Config (hooks.toml): `url` (the API endpoint, required), `verify_url` and `reset_url` (the pages
// that take `?token=`; optional). Secret: `api_key`, sent as `Authorization: Bearer ...`. The event
// id goes in `Idempotency-Key`, so the API can drop the duplicates that at-least-once delivery may
// produce.
//
// One source for both JavaScript engines: QuickJS (jco --backend qjs) and SpiderMonkey
// (componentize-js). So it uses only plain ECMAScript and its WIT imports (no fetch: QuickJS has
// none). `postJson` is wasi:http/outgoing-handler, through http-shim/ (see wit/world.wit).

import * as host from 'hookauth:hooks/host@0.1.0';
import { postJson } from 'hookauth:email-js/http@0.1.0';

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

    let status;
    try {
      status = postJson(url, [
        ['authorization', `Bearer ${key}`],
        ['idempotency-key', event.context.eventId],
      ], body);
    } catch (e) {
      // QuickJS throws the err string itself; SpiderMonkey wraps it in {payload}.
      throw typeof e === 'string' ? e : String(e?.payload ?? e);
    }
    if (status < 200 || status > 299) throw `email API answered ${status}`;
    host.log('info', 'email sent', [
      ['event_id', event.context.eventId],
      ['template', kind.template],
    ]);
  },
};
