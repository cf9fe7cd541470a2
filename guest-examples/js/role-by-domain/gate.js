// A gate that gives new users a role by the domain of their email address.
//
// Serves `before-register`. Config (hooks.toml): `roles`, a JSON object mapping an email domain
// to the name of an existing role, e.g. {"example.com": "staff"}. An address whose domain is a
// key (exactly: `dev.example.com` is not `example.com`) is allowed with that role; any other is
// allowed unchanged. It never denies.
//
// A `roles` that is not such an object is a configuration error: the gate throws, which the
// host treats as its `on_error` says (deny by default), and the message is in the server's log.

import * as host from 'hookauth:hooks/host@0.1.0';

export const gate = {
  register() {
    return {
      points: ['before-register'],
      config: ['roles'],
      secrets: [],
    };
  },

  beforeRegister(email, _profile, _context) {
    const roles = parseRoles(host.configGet('roles'));
    // The host hands over the address normalised (lower case, IDN as ASCII).
    const domain = email.slice(email.lastIndexOf('@') + 1);
    if (!Object.hasOwn(roles, domain)) return { tag: 'allow' };
    return { tag: 'allow-with-changes', val: { profile: [], roles: [roles[domain]] } };
  },

  // Not served: register() lists only before-register, so the host never calls these.
  beforeLogin(_user, _context) {
    return { tag: 'allow' };
  },
  checkPassword(_subject, _password, _why, _context) {
    return { tag: 'allow' };
  },
  tokenClaims(_user, _context, _grant) {
    return [];
  },
};

// `{"domain": "role", ...}` from the config text, with lower-case domains.
function parseRoles(text) {
  if (text == null) throw new Error('config `roles` is not set');
  const parsed = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('config `roles` must be a JSON object of domain -> role');
  }
  const roles = {};
  for (const [domain, role] of Object.entries(parsed)) {
    if (typeof role !== 'string') throw new Error(`config \`roles\`: the role of ${domain} is not a string`);
    roles[domain.toLowerCase()] = role;
  }
  return roles;
}
