// Audit hook in plain C: logs every event into the server's log, with who, what and from where.
// Never logs tokens (the verification and reset emails carry one: only the address is logged).
//
// Bindings: `wit-bindgen c` generates hook.h/hook.c from wit/v0.1.0 (see the Makefile). The host
// passes each event by ownership: the hook frees it before returning.

#include <stdlib.h>
#include <string.h>

#include "hook.h"

#define MAX_FIELDS 8

typedef struct {
    hook_tuple2_string_string_t items[MAX_FIELDS];
    size_t len;
} fields_t;

// Borrows `value`: the host copies what it logs during the call.
static void field(fields_t *f, const char *name, const hook_string_t *value) {
    if (f->len == MAX_FIELDS) return;
    hook_tuple2_string_string_t *t = &f->items[f->len++];
    hook_string_set(&t->f0, name);
    t->f1 = *value;
}

static void user_fields(fields_t *f, const hookauth_hooks_types_user_t *user) {
    field(f, "user_id", &user->id);
    field(f, "email", &user->email);
}

static const char *const KIND_NAMES[] = {
    "after_register",          "after_login",         "after_logout",
    "after_password_change",   "after_password_reset", "after_email_verify",
    "send_verification_email", "send_password_reset_email",
    "after_oauth_login",       "after_oauth_register", "after_oauth_link",
    "after_oauth_unlink",      "after_mfa_enabled",    "after_mfa_disabled",
};
#define KINDS (sizeof KIND_NAMES / sizeof KIND_NAMES[0])

void exports_hookauth_hooks_handler_register(exports_hookauth_hooks_handler_registration_t *ret) {
    // Every event. The host frees these lists after the call (cabi_post), so they are malloc'd.
    hookauth_hooks_types_event_kind_t *kinds = malloc(KINDS * sizeof *kinds);
    if (!kinds) abort();
    for (size_t i = 0; i < KINDS; i++) kinds[i] = (hookauth_hooks_types_event_kind_t)i;
    ret->events.ptr = kinds;
    ret->events.len = KINDS;
    ret->config.ptr = NULL;
    ret->config.len = 0;
    ret->secrets.ptr = NULL;
    ret->secrets.len = 0;
}

bool exports_hookauth_hooks_handler_handle(exports_hookauth_hooks_handler_event_t *event,
                                           hook_string_t *err) {
    (void)err;  // this hook never fails
    fields_t f = {.len = 0};
    field(&f, "event_id", &event->context.event_id);
    field(&f, "tenant", &event->tenant);
    if (event->context.client_ip.is_some) field(&f, "client_ip", &event->context.client_ip.val);

    hook_string_t provider_is_new;
    const hookauth_hooks_types_payload_t *p = &event->payload;
    switch (p->tag) {
        case HOOKAUTH_HOOKS_TYPES_PAYLOAD_AFTER_LOGOUT:
            field(&f, "user_id", &p->val.after_logout);
            break;
        case HOOKAUTH_HOOKS_TYPES_PAYLOAD_SEND_VERIFICATION_EMAIL:
        case HOOKAUTH_HOOKS_TYPES_PAYLOAD_SEND_PASSWORD_RESET_EMAIL:
            // The token is a credential: only the address is logged.
            field(&f, "email", &p->val.send_verification_email.email);
            break;
        case HOOKAUTH_HOOKS_TYPES_PAYLOAD_AFTER_OAUTH_LOGIN:
            field(&f, "provider", &p->val.after_oauth_login.provider);
            hook_string_set(&provider_is_new, p->val.after_oauth_login.is_new_user ? "true" : "false");
            field(&f, "is_new_user", &provider_is_new);
            user_fields(&f, &p->val.after_oauth_login.user);
            break;
        case HOOKAUTH_HOOKS_TYPES_PAYLOAD_AFTER_OAUTH_REGISTER:
            field(&f, "provider", &p->val.after_oauth_register.user_info.provider);
            user_fields(&f, &p->val.after_oauth_register.user);
            break;
        case HOOKAUTH_HOOKS_TYPES_PAYLOAD_AFTER_OAUTH_LINK:
        case HOOKAUTH_HOOKS_TYPES_PAYLOAD_AFTER_OAUTH_UNLINK:
            field(&f, "provider", &p->val.after_oauth_link.provider);
            user_fields(&f, &p->val.after_oauth_link.user);
            break;
        default:
            // Every other event carries a user (register, login, password, email, MFA).
            user_fields(&f, &p->val.after_register);
            break;
    }

    char message[64] = "audit: ";
    if (p->tag < KINDS) strncat(message, KIND_NAMES[p->tag], sizeof message - strlen(message) - 1);
    hook_string_t msg;
    hook_string_set(&msg, message);
    hook_list_tuple2_string_string_t list = {.ptr = f.items, .len = f.len};
    hookauth_hooks_host_log(HOOKAUTH_HOOKS_HOST_LEVEL_INFO, &msg, &list);

    exports_hookauth_hooks_handler_event_free(event);
    return true;
}
