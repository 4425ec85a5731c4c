/* crm_integration.c - a legacy C CRM taking Alipay+ membership registrations
 * through cardbridge's C ABI.
 *
 * What a CRM does with cardbridge, end to end:
 *   - configure the integration from a JSON file or from a string built in code,
 *     on a durable SQLite store (idempotency records and the issueCard outbox);
 *   - at start-up, re-send the issueCard calls a previous run left undecided;
 *   - serve notifyCardRegistration: cardbridge verifies and validates the
 *     request (begin), the CRM decides from the registration fields, cardbridge
 *     signs and stores the answer (finish); duplicates never reach the CRM;
 *   - issue the card back (build_issue_card + issue_card), keep the requestId
 *     when the outcome is unknown and finish it later with resume_pending;
 *   - report errors with every cardbridge_error_* accessor, free everything.
 *
 * The Alipay+ platform is played by test support outside the library: the
 * `cardbridge emulator` binary (its issueCard endpoint, and the platform's
 * signed calls to the CRM, minted through its control API), started and
 * driven by emulator_client.h. In production the requests come from the
 * CRM's web server and base_url points at the real platform.
 *
 * Build from the repository root (after `cargo build`, which builds the library and the binary):
 *   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/c/crm_integration.c \
 *       -Ltarget/debug -lcardbridge -Wl,-rpath,"$PWD/target/debug" -o target/crm_integration
 * Run (CARDBRIDGE_BIN: the cardbridge binary; default `cardbridge` on PATH):
 *   CARDBRIDGE_BIN=target/debug/cardbridge target/crm_integration [--keys DIR/] [--config FILE] [--db PATH]
 *     --keys    directory of the test keys, with trailing '/' (default tests/fixtures/keys/)
 *     --config  a cardbridge configuration JSON (see cardbridge_alipayplus_new) without
 *               base_url, which this demo sets to its emulator; default: built in code
 *     --db      SQLite file (default crm_integration.db)
 * Exits 0 when every step had the outcome the CRM expected. */
#define _POSIX_C_SOURCE 200809L /* emulator_client.h: popen, mkstemp, sockets */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cardbridge.h"
#include "emulator_client.h"
#include "mini_json.h"

#define APP_ID "2102010113769000"
#define BUILT_IN_CLIENT_ID "2022CRM_DEMO_CLIENT"
#define NOTIFY_TARGET "/v2/pds/memberships/notifyCardRegistration"
#define S(lit) lit, sizeof(lit) - 1 /* a string literal as pointer + length */

/* ======================================================================
 * Small utilities: growable text, files, time
 * ====================================================================== */

typedef struct {
    char *data;
    size_t len, cap;
} text;

static void fatal(const char *what) {
    fprintf(stderr, "crm: %s\n", what);
    exit(1);
}

static void text_add_n(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *grown = realloc(t->data, cap);
        if (grown == NULL) fatal("out of memory");
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void text_add(text *t, const char *s) { text_add_n(t, s, strlen(s)); }

/* Appends `s` as a JSON string literal (PEM keys contain newlines). */
static void text_add_json(text *t, const char *s) {
    text_add(t, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            text_add_n(t, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
            text_add(t, esc);
        } else {
            text_add_n(t, (const char *)p, 1);
        }
    }
    text_add(t, "\"");
}

/* Appends `"key":"value"` with a leading comma unless it is the first member. */
static void text_member(text *t, const char *key, const char *value, int first) {
    if (!first) text_add(t, ",");
    text_add_json(t, key);
    text_add(t, ":");
    text_add_json(t, value);
}

/* A whole file as NUL-terminated text (caller frees), or NULL. */
static char *read_text_file(const char *dir, const char *name) {
    text path = {0};
    text_add(&path, dir);
    text_add(&path, name);
    FILE *f = fopen(path.data, "rb");
    if (f == NULL) {
        fprintf(stderr, "crm: cannot open %s\n", path.data);
        free(path.data);
        return NULL;
    }
    free(path.data);
    text content = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) text_add_n(&content, chunk, n);
    fclose(f);
    if (content.data == NULL) text_add(&content, "");
    return content.data;
}

static int64_t now_unix_ms(void) {
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) != TIME_UTC) fatal("no clock");
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The current UTC time as `2026-11-23T10:00:00<suffix>`. */
static void utc_now(char *buf, size_t len, const char *suffix) {
    time_t t = (time_t)(now_unix_ms() / 1000);
    char stamp[32];
    const struct tm *utc = gmtime(&t);
    if (utc == NULL || strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", utc) == 0) fatal("bad clock");
    snprintf(buf, len, "%s%s", stamp, suffix);
}

/* ======================================================================
 * Error reporting with the cardbridge_error_* accessors
 * ====================================================================== */

typedef cardbridge_result (*error_text_fn)(const cardbridge_error *, char *, size_t, size_t *);

/* One text accessor of an error, as a malloc'd string ("" if empty). Uses
 * the documented size query: call with len 0, allocate, call again. */
static char *error_text(error_text_fn accessor, const cardbridge_error *err) {
    size_t needed = 0, written = 0;
    char *buf = NULL;
    if (accessor(err, NULL, 0, &needed) == CARDBRIDGE_RESULT_INSUFFICIENT_SIZE && (buf = malloc(needed)) != NULL &&
        accessor(err, buf, needed, &written) == CARDBRIDGE_RESULT_OK) {
        return buf;
    }
    free(buf);
    buf = malloc(1);
    if (buf == NULL) fatal("out of memory");
    buf[0] = '\0';
    return buf;
}

/* Prints what a failed call said, then frees the error object (NULL allowed). */
static void report_error(const char *what, cardbridge_result rc, cardbridge_error *err) {
    printf("  ! %s failed: %s (%u)\n", what, cardbridge_result_name(rc), (unsigned)rc);
    if (err == NULL) return;
    char *message = error_text(cardbridge_error_message, err);
    char *field = error_text(cardbridge_error_field, err);
    char *limit = error_text(cardbridge_error_limit, err);
    char *remote_status = error_text(cardbridge_error_remote_status, err);
    char *remote_code = error_text(cardbridge_error_remote_code, err);
    char *remote_message = error_text(cardbridge_error_remote_message, err);
    printf("    message: %s\n", message);
    if (*field) printf("    field:   %s\n", field);
    if (*limit) printf("    limit:   %s\n", limit);
    if (*remote_code) printf("    platform answered: %s %s \"%s\"\n", remote_status, remote_code, remote_message);
    if (cardbridge_error_http_status(err) != 0) printf("    HTTP status: %u\n", cardbridge_error_http_status(err));
    free(message);
    free(field);
    free(limit);
    free(remote_status);
    free(remote_code);
    free(remote_message);
    cardbridge_error_free(err);
}

/* For set-up steps the CRM cannot run without. */
static void require_ok(cardbridge_result rc, cardbridge_error *err, const char *what) {
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error(what, rc, err);
        fatal("cannot continue");
    }
}

/* Outcomes that differ from what the CRM expected; the exit status. */
static int surprises = 0;

static void expect(int ok, const char *what) {
    if (!ok) {
        surprises++;
        printf("  UNEXPECTED: %s\n", what);
    }
}

/* ======================================================================
 * The CRM's own data: members, and the issueCard requests it still owes
 * ====================================================================== */

typedef struct {
    char id[16];                  /* externalCustomerId sent to the platform */
    char name[64];
    char email[257];
    char level[16];
    long points;
    char card_no[65];             /* set once the platform issued the card */
    char pending_request_id[65];  /* issueCard outcome unknown: resume later */
} member;

typedef struct {
    member members[16];
    size_t count;
    int registrations_decided;    /* how many calls reached the CRM's decision */
} crm_db;

static member *crm_add_member(crm_db *db, const char *name, const char *email, const char *level, long points) {
    if (db->count == sizeof db->members / sizeof db->members[0]) return NULL;
    member *m = &db->members[db->count++];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "M-%06u", (unsigned)db->count);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->email, sizeof m->email, "%s", email);
    snprintf(m->level, sizeof m->level, "%s", level);
    m->points = points;
    return m;
}

static member *crm_find_by_email(crm_db *db, const char *email) {
    for (size_t i = 0; i < db->count; i++) {
        if (strcmp(db->members[i].email, email) == 0) return &db->members[i];
    }
    return NULL;
}

static const char DECISION_SUCCESS[] =
    "{\"result\":{\"resultCode\":\"SUCCESS\",\"resultStatus\":\"S\",\"resultMessage\":\"success\"}}";
static const char DECISION_NO_CONTACT[] =
    "{\"result\":{\"resultCode\":\"PROCESS_FAIL\",\"resultStatus\":\"F\","
    "\"resultMessage\":\"registration needs an email address or a mobile phone number\"}}";

/* The value of registrationFields[*] whose fieldCode is `code` (malloc'd), or NULL. */
static char *registration_field(mj_span registration, const char *code) {
    mj_span fields, field, value;
    if (!mj_member(registration, "registrationFields", &fields)) return NULL;
    for (size_t i = 0; mj_element(fields, i, &field); i++) {
        mj_span field_code;
        if (mj_member(field, "fieldCode", &field_code) && mj_string_is(field_code, code) &&
            mj_member(field, "fieldValue", &value)) {
            return mj_string(value);
        }
    }
    return NULL;
}

/* The business decision on a notifyCardRegistration, from its JSON: a
 * contact is required; a known email links to the existing member, anything
 * else creates one. Returns the answer body (NULL: the CRM cannot decide
 * now) and, on success, the member the card is for. */
static const char *crm_decide_registration(crm_db *db, const uint8_t *json, size_t len, member **member_out) {
    mj_span registration;
    *member_out = NULL;
    if (!mj_parse((const char *)json, len, &registration)) return NULL;
    char *name = registration_field(registration, "USER_NAME");
    char *email = registration_field(registration, "EMAIL");
    char *phone = registration_field(registration, "MOBILE_PHONE");
    const char *decision = NULL;
    if (email == NULL && phone == NULL) {
        printf("  CRM: no email or phone -> refused\n");
        decision = DECISION_NO_CONTACT;
    } else if (email != NULL && (*member_out = crm_find_by_email(db, email)) != NULL) {
        printf("  CRM: %s is already member %s -> linked\n", email, (*member_out)->id);
        decision = DECISION_SUCCESS;
    } else if ((*member_out = crm_add_member(db, name ? name : "(no name)", email ? email : "", "BASIC", 0)) != NULL) {
        printf("  CRM: new member %s (%s)\n", (*member_out)->id, (*member_out)->name);
        decision = DECISION_SUCCESS;
    }
    free(name);
    free(email);
    free(phone);
    db->registrations_decided++;
    return decision;
}

/* ======================================================================
 * The CRM's endpoint for platform calls: begin -> decide -> finish
 * ====================================================================== */

/* Serves one platform request given as raw HTTP parts. Returns the response
 * to send (NULL: answer HTTP 500). When a card is to be issued, `*issue_out`
 * receives the issueCard request and `*member_out` its member. */
static cardbridge_http_response *serve_platform_call(crm_db *db, const cardbridge_alipayplus *ap, const char *method,
                                                     size_t method_len, const char *target, size_t target_len,
                                                     const cardbridge_header *headers, size_t header_count,
                                                     const uint8_t *body, size_t body_len, cardbridge_bytes *issue_out,
                                                     member **member_out) {
    cardbridge_http_response *response = NULL;
    cardbridge_alipayplus_call *call = NULL;
    cardbridge_error *err = NULL;
    *member_out = NULL;
    cardbridge_result rc = cardbridge_alipayplus_begin(ap, method, method_len, target, target_len, headers,
                                                       header_count, body, body_len, now_unix_ms(), &response, &call,
                                                       &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("cardbridge_alipayplus_begin", rc, err);
        return NULL;
    }
    if (response != NULL) {
        /* Bad signature, invalid body, unknown path or a duplicate: no CRM work. */
        printf("  cardbridge answered by itself\n");
        return response;
    }

    const uint8_t *json = NULL;
    size_t json_len = 0;
    const char *decision = NULL;
    member *m = NULL;
    if (cardbridge_alipayplus_call_api(call) == CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION &&
        (rc = cardbridge_alipayplus_call_request(call, &json, &json_len, &err)) == CARDBRIDGE_RESULT_OK) {
        decision = crm_decide_registration(db, json, json_len, &m);
    } else if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("cardbridge_alipayplus_call_request", rc, err);
        err = NULL;
    }

    if (decision != NULL) {
        rc = cardbridge_alipayplus_finish(ap, call, decision, strlen(decision), now_unix_ms(), &response, &err);
        if (rc != CARDBRIDGE_RESULT_OK) {
            report_error("cardbridge_alipayplus_finish", rc, err);
            err = NULL;
            m = NULL;
        }
    }
    if (response == NULL) {
        /* Not decided (other API, our own failure): U, the platform retries later. */
        rc = cardbridge_alipayplus_finish_unknown(ap, call, now_unix_ms(), &response, &err);
        if (rc != CARDBRIDGE_RESULT_OK) report_error("cardbridge_alipayplus_finish_unknown", rc, err);
        m = NULL;
    }
    if (m != NULL) {
        /* The request view dies with `call`: build the issueCard now, send it after answering. */
        char register_date[48], card_fields[160];
        utc_now(register_date, sizeof register_date, "+00:00");
        snprintf(card_fields, sizeof card_fields,
                 "[{\"fieldCode\":\"POINT\",\"fieldValue\":\"%ld\"},{\"fieldCode\":\"LEVEL\",\"fieldValue\":\"%s\"}]",
                 m->points, m->level);
        rc = cardbridge_alipayplus_build_issue_card((const char *)json, json_len, m->id, strlen(m->id), register_date,
                                                    strlen(register_date), card_fields, strlen(card_fields),
                                                    NULL, 0, issue_out, &err);
        if (rc == CARDBRIDGE_RESULT_OK) {
            *member_out = m;
        } else {
            report_error("cardbridge_alipayplus_build_issue_card", rc, err);
        }
    }
    cardbridge_alipayplus_call_free(call);
    return response;
}

/* Whether the `len` bytes at `body` contain `needle` (bodies are not NUL-terminated). */
static int body_contains(const uint8_t *body, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; body != NULL && i + n <= len; i++) {
        if (memcmp(body + i, needle, n) == 0) return 1;
    }
    return 0;
}

/* Prints the response the web server sends back; returns its body view. */
static const uint8_t *send_response(const cardbridge_http_response *response, size_t *len) {
    const uint8_t *body = NULL;
    *len = 0;
    if (response == NULL) {
        printf("  -> HTTP 500\n");
        return NULL;
    }
    cardbridge_error *err = NULL;
    cardbridge_result rc = cardbridge_http_response_body(response, &body, len, &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("cardbridge_http_response_body", rc, err);
        return NULL;
    }
    printf("  -> HTTP %u %.*s\n", cardbridge_http_response_status(response), (int)*len, (const char *)body);
    return body;
}

/* ======================================================================
 * issueCard, and finishing unknown outcomes later
 * ====================================================================== */

/* Sends the issueCard request for `m` and records the outcome in the CRM. */
static cardbridge_result crm_issue_card(const cardbridge_alipayplus *ap, member *m, const cardbridge_bytes *request) {
    cardbridge_bytes answer = {NULL, 0};
    cardbridge_error *err = NULL;
    cardbridge_result rc =
        cardbridge_alipayplus_issue_card(ap, (const char *)request->data, request->len, &answer, &err);
    mj_span doc, value;
    switch (rc) {
    case CARDBRIDGE_RESULT_OK:
        if (mj_parse((const char *)answer.data, answer.len, &doc) && mj_member(doc, "cardNo", &value)) {
            char *card_no = mj_string(value);
            snprintf(m->card_no, sizeof m->card_no, "%s", card_no ? card_no : "");
            free(card_no);
        }
        printf("  issueCard: card %s issued to %s\n", m->card_no, m->id);
        break;
    case CARDBRIDGE_RESULT_REMOTE_UNKNOWN:
        /* Nothing is lost: the request sits in the store's outbox. Keep its
         * requestId and let resume_pending finish it (or the next start-up). */
        if (mj_parse((const char *)request->data, request->len, &doc) && mj_member(doc, "requestId", &value)) {
            char *request_id = mj_string(value);
            snprintf(m->pending_request_id, sizeof m->pending_request_id, "%s", request_id ? request_id : "");
            free(request_id);
        }
        report_error("issueCard", rc, err);
        printf("  issueCard: outcome unknown, requestId %s kept for %s\n", m->pending_request_id, m->id);
        break;
    case CARDBRIDGE_RESULT_REMOTE_FAILED:
        report_error("issueCard", rc, err);
        printf("  issueCard: the platform refused the card for %s; flagged for the membership team\n", m->id);
        break;
    default:
        report_error("issueCard", rc, err);
    }
    cardbridge_bytes_free(&answer);
    return rc;
}

/* Whether outbox id `id` belongs to `request_id` (ids end in "/<requestId>"). */
static int outbox_id_is_for(const char *id, const char *request_id) {
    size_t n = strlen(id), r = strlen(request_id);
    return r > 0 && n > r && id[n - r - 1] == '/' && strcmp(id + n - r, request_id) == 0;
}

/* Re-sends every pending issueCard and settles the CRM's kept requestIds.
 * Returns how many cards it settled. */
static int crm_resume_pending(crm_db *db, const cardbridge_alipayplus *ap) {
    cardbridge_bytes report = {NULL, 0};
    cardbridge_error *err = NULL;
    int settled = 0;
    cardbridge_result rc = cardbridge_alipayplus_resume_pending(ap, &report, &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("cardbridge_alipayplus_resume_pending", rc, err);
        return 0;
    }
    printf("  resume_pending report: %s\n", (const char *)report.data);
    mj_span entries, entry, value;
    if (!mj_parse((const char *)report.data, report.len, &entries)) entries.n = 0;
    for (size_t i = 0; entries.n > 0 && mj_element(entries, i, &entry); i++) {
        char *id = mj_member(entry, "id", &value) ? mj_string(value) : NULL;
        int ok = mj_member(entry, "ok", &value) && mj_is_true(value);
        for (size_t k = 0; id != NULL && k < db->count; k++) {
            member *m = &db->members[k];
            if (!outbox_id_is_for(id, m->pending_request_id)) continue;
            if (ok) {
                mj_span response, card_no;
                char *card = mj_member(entry, "response", &response) && mj_member(response, "cardNo", &card_no)
                                 ? mj_string(card_no)
                                 : NULL;
                snprintf(m->card_no, sizeof m->card_no, "%s", card ? card : "");
                free(card);
                m->pending_request_id[0] = '\0';
                settled++;
                printf("  resumed: card %s issued to %s\n", m->card_no, m->id);
            } else {
                char *name = mj_member(entry, "name", &value) ? mj_string(value) : NULL;
                printf("  resumed: %s still %s\n", m->id, name ? name : "failing");
                if (name != NULL && strcmp(name, "CARDBRIDGE_RESULT_REMOTE_UNKNOWN") != 0) {
                    m->pending_request_id[0] = '\0'; /* final: hand over to the membership team */
                }
                free(name);
            }
        }
        free(id);
    }
    cardbridge_bytes_free(&report);
    return settled;
}

/* ======================================================================
 * Test support: the platform's side
 * ====================================================================== */

/* A notifyCardRegistration body (name and email optional). */
static char *registration_body(const char *request_id, const char *customer_id, const char *name, const char *email) {
    text t = {0};
    text_add(&t, "{");
    text_member(&t, "appId", APP_ID, 1);
    text_member(&t, "customerBelongsTo", "TNG", 0);
    text_member(&t, "requestId", request_id, 0);
    text_member(&t, "customerId", customer_id, 0);
    text_add(&t, ",\"registrationFields\":[");
    int first = 1;
    if (name != NULL) {
        text_add(&t, "{");
        text_member(&t, "fieldCode", "USER_NAME", 1);
        text_member(&t, "fieldValue", name, 0);
        text_add(&t, "}");
        first = 0;
    }
    if (email != NULL) {
        text_add(&t, first ? "{" : ",{");
        text_member(&t, "fieldCode", "EMAIL", 1);
        text_member(&t, "fieldValue", email, 0);
        text_add(&t, "}");
    }
    text_add(&t, "]}");
    return t.data;
}

/* The platform posts a notifyCardRegistration to the CRM: `body`, or (NULL)
 * the emulator's sample registration for `request_id`, signed by the
 * emulator; the CRM's web server hands its parts to serve_platform_call. */
static cardbridge_http_response *platform_posts(const emu_process *emu, crm_db *db, const cardbridge_alipayplus *ap,
                                                const char *body, const char *request_id, cardbridge_bytes *issue_out,
                                                member **member_out) {
    text call = {0};
    text_add(&call, "{");
    text_member(&call, "target", NOTIFY_TARGET, 1);
    if (body != NULL) {
        text_member(&call, "body", body, 0);
    } else {
        text_member(&call, "request_id", request_id, 0);
    }
    text_add(&call, "}");
    emu_request req;
    if (!emu_mint(emu, "/alipayplus/mint", call.data, &req)) fatal("the emulator did not sign the call");
    free(call.data);

    /* What a web server has at hand: method, target, headers, raw body. */
    cardbridge_http_response *response =
        serve_platform_call(db, ap, req.method, strlen(req.method), req.target, strlen(req.target), req.headers,
                            req.header_count, (const uint8_t *)req.body, req.body_len, issue_out, member_out);
    emu_request_free(&req);
    return response;
}

static void push_fault(const emu_process *emu, const char *fault) {
    char *answer = emu_ok(emu, "POST", "/alipayplus/faults", fault);
    if (answer == NULL) fatal("the emulator refused the fault");
    free(answer);
}

/* ======================================================================
 * Configuration
 * ====================================================================== */

/* The configuration built in code from PEM files. */
static char *built_config(const char *merchant_private, const char *platform_public, const char *base_url) {
    text t = {0};
    text_add(&t, "{");
    text_member(&t, "client_id", BUILT_IN_CLIENT_ID, 1);
    text_member(&t, "merchant_private_key", merchant_private, 0);
    text_member(&t, "platform_public_key", platform_public, 0);
    text_member(&t, "base_url", base_url, 0);
    /* Short backoff for the demo; generous timeouts (valgrind runs ~50x slower). */
    text_add(&t, ",\"connect_timeout_ms\":10000,\"read_timeout_ms\":60000,"
                 "\"retry\":{\"max_attempts\":2,\"base_delay_ms\":10,\"max_delay_ms\":50,\"deadline_ms\":300000}}");
    return t.data;
}

/* The configuration file's JSON with base_url added as its first member. */
static char *file_config(const char *file_json, const char *base_url) {
    mj_span doc;
    if (!mj_parse(file_json, strlen(file_json), &doc) || doc.p[0] != '{') return NULL;
    text t = {0};
    text_add(&t, "{");
    text_member(&t, "base_url", base_url, 1);
    const char *rest = mj_ws(doc.p + 1, doc.p + doc.n);
    if (*rest != '}') text_add(&t, ",");
    text_add_n(&t, rest, (size_t)(doc.p + doc.n - rest));
    return t.data;
}

/* ======================================================================
 * Logging: the library's events into the CRM's own log (here: stdout).
 * Events hold identifiers, labels and numbers, never personal data.
 * ====================================================================== */

static void crm_log(void *user_data, const cardbridge_log_event *event) {
    static const char *const levels[] = {"?", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    FILE *out = user_data;
    fprintf(out, "  [log] %s %.*s %.*s", levels[event->level <= 5 ? event->level : 0], (int)event->target_len,
            event->target, (int)event->message_len, event->message);
    for (size_t i = 0; i < event->fields_len; i++) {
        fprintf(out, " %.*s=%.*s", (int)event->fields[i].key_len, event->fields[i].key,
                (int)event->fields[i].value_len, event->fields[i].value);
    }
    fputc('\n', out);
}

/* ======================================================================
 * main: one CRM run
 * ====================================================================== */

int main(int argc, char **argv) {
    const char *keys_dir = "tests/fixtures/keys/";
    const char *config_file = NULL;
    const char *db_path = "crm_integration.db";
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--keys") == 0) {
            keys_dir = argv[i + 1];
        } else if (strcmp(argv[i], "--config") == 0) {
            config_file = argv[i + 1];
        } else if (strcmp(argv[i], "--db") == 0) {
            db_path = argv[i + 1];
        } else {
            break;
        }
    }
    if (i != argc) {
        fprintf(stderr, "usage: %s [--keys DIR/] [--config FILE] [--db PATH]\n", argv[0]);
        return 2;
    }
    printf("CRM starting with %s\n", cardbridge_version());
    if (cardbridge_set_log_callback(CARDBRIDGE_LOG_INFO, crm_log, stdout, NULL) != CARDBRIDGE_RESULT_OK) {
        fatal("cannot set the log callback");
    }

    char *merchant_private = read_text_file(keys_dir, "test_merchant_private.pem");
    char *merchant_public = read_text_file(keys_dir, "test_merchant_public.pem");
    char *platform_private = read_text_file(keys_dir, "test_platform_private.pem");
    char *platform_public = read_text_file(keys_dir, "test_platform_public.pem");
    char *file_json = config_file ? read_text_file("", config_file) : NULL;
    if (!merchant_private || !merchant_public || !platform_private || !platform_public ||
        (config_file && !file_json)) {
        fatal("missing key or configuration file");
    }

    /* The client id is in the configuration; the emulator must expect it too. */
    char client_id[65] = BUILT_IN_CLIENT_ID;
    long long max_attempts = 2;
    if (file_json != NULL) {
        mj_span doc, value, retry;
        char *id = NULL;
        if (!mj_parse(file_json, strlen(file_json), &doc) || !mj_member(doc, "client_id", &value) ||
            (id = mj_string(value)) == NULL) {
            fatal("the configuration file is not JSON with a client_id");
        }
        snprintf(client_id, sizeof client_id, "%s", id);
        free(id);
        max_attempts = 5; /* the library's default */
        if (mj_member(doc, "retry", &retry) && mj_member(retry, "max_attempts", &value)) {
            mj_integer(value, &max_attempts);
        }
    }

    cardbridge_error *err = NULL;
    cardbridge_result rc;

    /* ---- test support: the platform's issueCard endpoint on loopback ---- */
    text emulator_config = {0};
    text_add(&emulator_config, "{");
    text_member(&emulator_config, "platform_private_key", platform_private, 1);
    text_member(&emulator_config, "merchant_public_key", merchant_public, 0);
    text_member(&emulator_config, "client_id", client_id, 0);
    text_add(&emulator_config, "}");
    emu_process emulator;
    if (!emu_start(&emulator, emulator_config.data)) fatal("the emulator did not start");

    /* ---- the durable store and the integration ---- */
    const cardbridge_store *store = NULL;
    rc = cardbridge_store_open_sqlite(db_path, strlen(db_path), &store, &err);
    require_ok(rc, err, "cardbridge_store_open_sqlite");
    char *config = file_json ? file_config(file_json, emulator.url)
                             : built_config(merchant_private, platform_public, emulator.url);
    if (config == NULL) fatal("the configuration file is not a JSON object");
    printf("configuration %s, store %s\n", file_json ? config_file : "built in code", db_path);
    const cardbridge_alipayplus *ap = NULL;
    rc = cardbridge_alipayplus_new(config, strlen(config), store, &ap, &err);
    /* The integration holds its own reference to the store. */
    cardbridge_store_free(store);
    require_ok(rc, err, "cardbridge_alipayplus_new");

    /* ---- test support: the platform calling the CRM ---- */

    crm_db db;
    memset(&db, 0, sizeof db);
    crm_add_member(&db, "Ana Lima", "ana@example.com", "GOLD", 1200);

    /* Unique requestIds per run, so a kept database never replays an old answer. */
    char id_a[40], id_b[40], id_c[40], id_d[40];
    long long run = (long long)now_unix_ms();
    snprintf(id_a, sizeof id_a, "CRM%lldA", run);
    snprintf(id_b, sizeof id_b, "CRM%lldB", run);
    snprintf(id_c, sizeof id_c, "CRM%lldC", run);
    snprintf(id_d, sizeof id_d, "CRM%lldD", run);

    cardbridge_bytes issue = {NULL, 0};
    member *m = NULL;
    size_t len = 0;
    const uint8_t *sent = NULL;

    printf("\n[start-up] finish issueCard calls a previous run left undecided\n");
    crm_resume_pending(&db, ap);

    printf("\n[1] a new customer registers\n");
    cardbridge_http_response *first = platform_posts(&emulator, &db, ap, NULL, id_a, &issue, &m);
    size_t first_len = 0;
    const uint8_t *first_body = send_response(first, &first_len);
    expect(body_contains(first_body, first_len, "\"resultStatus\":\"S\""), "registration 1 answered S");
    expect(m != NULL, "registration 1 gets a card");
    if (m != NULL) {
        rc = crm_issue_card(ap, m, &issue);
        expect(rc == CARDBRIDGE_RESULT_OK && m->card_no[0] != '\0', "card issued for registration 1");
    }
    cardbridge_bytes_free(&issue);

    printf("\n[2] the platform resends registration 1\n");
    int decided = db.registrations_decided;
    cardbridge_http_response *again = platform_posts(&emulator, &db, ap, NULL, id_a, &issue, &m);
    sent = send_response(again, &len);
    expect(db.registrations_decided == decided && m == NULL, "the duplicate did not reach the CRM");
    expect(sent != NULL && first_body != NULL && len == first_len && memcmp(sent, first_body, len) == 0,
           "the duplicate got the stored answer byte for byte");
    cardbridge_http_response_free(again);
    cardbridge_http_response_free(first);

    printf("\n[3] a registration without email or phone\n");
    char *body = registration_body(id_b, "2109000000000002", "Nobody", NULL);
    cardbridge_http_response *refused = platform_posts(&emulator, &db, ap, body, NULL, &issue, &m);
    sent = send_response(refused, &len);
    expect(body_contains(sent, len, "\"resultCode\":\"PROCESS_FAIL\"") && m == NULL,
           "registration 3 refused with PROCESS_FAIL");
    cardbridge_http_response_free(refused);
    free(body);

    printf("\n[4] an existing customer registers; the platform cannot confirm the card\n");
    /* Every attempt of the retry budget gets "U": the outcome stays unknown. */
    for (long long k = 0; k < max_attempts; k++) push_fault(&emulator, "{\"fault\":\"unknown\"}");
    body = registration_body(id_c, "2109000000000003", "Ana", "ana@example.com");
    cardbridge_http_response *linked = platform_posts(&emulator, &db, ap, body, NULL, &issue, &m);
    send_response(linked, &len);
    member *ana = m;
    expect(ana != NULL && strcmp(ana->id, "M-000001") == 0, "registration 4 linked to member M-000001");
    if (ana != NULL) {
        rc = crm_issue_card(ap, ana, &issue);
        expect(rc == CARDBRIDGE_RESULT_REMOTE_UNKNOWN && strcmp(ana->pending_request_id, id_c) == 0,
               "issueCard outcome unknown, requestId kept");
    }
    cardbridge_bytes_free(&issue);
    cardbridge_http_response_free(linked);
    free(body);

    printf("\n[5] later: resume the pending issueCard\n");
    int settled = crm_resume_pending(&db, ap);
    expect(settled == 1 && ana != NULL && ana->card_no[0] != '\0' && ana->pending_request_id[0] == '\0',
           "the pending card was issued on resume");

    printf("\n[6] a new customer registers; the platform refuses the card\n");
    push_fault(&emulator, "{\"fault\":\"fail\",\"message\":\"membership programme paused\"}");
    body = registration_body(id_d, "2109000000000004", "Bo Chen", "bo@example.com");
    cardbridge_http_response *answered = platform_posts(&emulator, &db, ap, body, NULL, &issue, &m);
    send_response(answered, &len);
    expect(m != NULL, "registration 6 gets a card");
    if (m != NULL) {
        rc = crm_issue_card(ap, m, &issue);
        expect(rc == CARDBRIDGE_RESULT_REMOTE_FAILED && m->card_no[0] == '\0', "issueCard refused with REMOTE_FAILED");
    }
    cardbridge_bytes_free(&issue);
    cardbridge_http_response_free(answered);
    free(body);

    printf("\nmembers:\n");
    for (size_t k = 0; k < db.count; k++) {
        const member *x = &db.members[k];
        printf("  %s %-10s %-20s card %s\n", x->id, x->name, x->email, x->card_no[0] ? x->card_no : "-");
    }
    printf("emulator: %lld issueCard requests, %lld cards issued\n",
           emu_counter(&emulator, "alipayplus", "issue_card_hits", NULL),
           emu_counter(&emulator, "alipayplus", "cards_issued", NULL));

    cardbridge_bytes metrics = {NULL, 0};
    if (cardbridge_alipayplus_metrics(ap, &metrics, NULL) == CARDBRIDGE_RESULT_OK) {
        printf("metrics: %.*s\n", (int)metrics.len, (const char *)metrics.data);
        cardbridge_bytes_free(&metrics);
    }
    cardbridge_set_log_callback(CARDBRIDGE_LOG_INFO, NULL, NULL, NULL);

    cardbridge_alipayplus_free(ap);
    emu_stop(&emulator);
    free(config);
    free(emulator_config.data);
    free(file_json);
    free(merchant_private);
    free(merchant_public);
    free(platform_private);
    free(platform_public);

    printf("CRM run finished: %d unexpected outcome(s)\n", surprises);
    return surprises == 0 ? 0 : 1;
}
