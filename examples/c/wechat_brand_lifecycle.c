/* wechat_brand_lifecycle.c - a C CRM running the WeChat Pay brand member-card
 * lifecycle through cardbridge's C ABI (the same steps as
 * examples/python/wechat_card_opening.py, the C# example and examples/demo.rs):
 *
 *   0. create the brand's card template with the notify_url for its events;
 *   1. a user opens the card: WeChat Pay posts a signed, encrypted
 *      USER_CARD.CREATE event; the CRM's notify_url handler hands it to
 *      cardbridge_wechatpay_callback_begin (verify, decrypt, de-duplicate),
 *      creates the member from the event and answers with
 *      cardbridge_wechatpay_callback_finish; a redelivery never reaches the CRM;
 *   2. confirm the card opening (the phone in cleartext, encrypted by the
 *      library; recorded in the outbox and retried with the same request);
 *   3. sync the member's points;
 *   4. post a member feed;
 *   5. a points-for-coupon exchange: the POINT_EXCHANGE_COUPON event is
 *      answered with cardbridge_wechatpay_confirm_exchange_coupon from the
 *      event handler;
 *   6. the member leaves: the card is invalidated (irreversible, with a reason).
 * The library's log events (identifiers, labels, numbers; never personal data)
 * go to the CRM's log through cardbridge_set_log_callback.
 *
 * WeChat Pay is played by test support outside the library: the `cardbridge
 * emulator` binary, started and driven by emulator_client.h. Its control API
 * signs and seals the platform's callbacks (POST /__cardbridge/wechatpay/mint);
 * the example processes each one exactly as its web server would hand over
 * a request (method, target, headers, raw body). In production the callbacks
 * come from the CRM's web server and base_url is WeChat Pay's.
 *
 * Build from the repository root (after `cargo build`):
 *   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/c/wechat_brand_lifecycle.c \
 *       -Ltarget/debug -lcardbridge -Wl,-rpath,"$PWD/target/debug" -o target/wechat_brand_lifecycle
 * Run (CARDBRIDGE_BIN: the cardbridge binary; default `cardbridge` on PATH):
 *   CARDBRIDGE_BIN=target/debug/cardbridge target/wechat_brand_lifecycle [--keys DIR/] [--db PATH]
 *     --keys  directory of the test keys, with trailing '/' (default tests/fixtures/keys/)
 *     --db    SQLite file (default wechat_brand_lifecycle.db)
 * Exits 0 when every step had the outcome the CRM expected. */
#define _POSIX_C_SOURCE 200809L /* emulator_client.h: popen, mkstemp, sockets */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cardbridge.h"
#include "emulator_client.h"
#include "mini_json.h"

#define MCHID "1900000001"
#define MERCHANT_SERIAL "5F1C72E2A8931B72A2E13AF8DEE92471EB397115"
#define API_V3_KEY "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
#define PUB_KEY_ID "PUB_KEY_ID_0114232134912410000000000000"
#define CARD_ID "pbLatjvWOibDc5-TBnbUk1pD12o0"
#define OPENID "obLatjnx9gnqzS4myYGmLZ7LgLBA"
#define BRAND_ID "1004"
#define CODE "478515832665"
/* The members naming one user card, as most card-member calls take them. */
#define CARD_MEMBERS                                                                 \
    "\"brand_id\":\"" BRAND_ID "\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID \
    "\",\"user_card_code\":\"" CODE "\""

/* ======================================================================
 * Small utilities
 * ====================================================================== */

static void fatal(const char *what) {
    fprintf(stderr, "crm: %s\n", what);
    exit(1);
}

/* Adds to a growable text (emulator_client.h's), exiting when out of memory. */
static void add(emu_text *t, const char *s) {
    if (!emu_add(t, s)) fatal("out of memory");
}

static void add_json(emu_text *t, const char *s) {
    if (!emu_add_json(t, s)) fatal("out of memory");
}

/* Appends `"key":"value"` with a leading comma unless it is the first member. */
static void add_member(emu_text *t, const char *key, const char *value, int first) {
    if (!first) add(t, ",");
    add_json(t, key);
    add(t, ":");
    add_json(t, value);
}

/* A whole file as NUL-terminated text (caller frees), or NULL. */
static char *read_text_file(const char *dir, const char *name) {
    emu_text path = {NULL, 0, 0}, content = {NULL, 0, 0};
    add(&path, dir);
    add(&path, name);
    FILE *f = fopen(path.p, "rb");
    if (f == NULL) fprintf(stderr, "crm: cannot open %s\n", path.p);
    free(path.p);
    if (f == NULL) return NULL;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (!emu_add_n(&content, chunk, n)) fatal("out of memory");
    }
    fclose(f);
    if (content.p == NULL) add(&content, "");
    return content.p;
}

static int64_t now_unix_ms(void) {
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) != TIME_UTC) fatal("no clock");
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Outcomes that differ from what the CRM expected; the exit status. */
static int surprises = 0;

static void expect(int ok, const char *what) {
    printf("  %s: %s\n", ok ? "ok" : "UNEXPECTED", what);
    if (!ok) surprises++;
}

/* ======================================================================
 * Errors and logging
 * ====================================================================== */

typedef cardbridge_result (*error_text_fn)(const cardbridge_error *, char *, size_t, size_t *);

/* One text accessor of an error as a malloc'd string ("" if empty). */
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

/* Prints what a failed call said (never values: messages name field, rule and
 * limit), then frees the error object (NULL allowed). */
static void report_error(const char *what, cardbridge_result rc, cardbridge_error *err) {
    printf("  ! %s failed: %s (%u)\n", what, cardbridge_result_name(rc), (unsigned)rc);
    if (err == NULL) return;
    char *message = error_text(cardbridge_error_message, err);
    char *field = error_text(cardbridge_error_field, err);
    printf("    message: %s\n", message);
    if (*field) printf("    field:   %s\n", field);
    free(message);
    free(field);
    cardbridge_error_free(err);
}

/* The CRM's log: one line per library event on stdout. */
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
 * Calls to WeChat Pay: one JSON input, one JSON answer
 * ====================================================================== */

typedef cardbridge_result (*wechat_call_fn)(const cardbridge_wechatpay *, const char *, size_t, cardbridge_bytes *,
                                            cardbridge_error **);

/* Runs one operation; returns the answer JSON (`{"status","body",...}`, caller
 * frees with cardbridge_bytes_free) or {NULL, 0} after reporting the error. */
static cardbridge_bytes call(const cardbridge_wechatpay *wp, wechat_call_fn fn, const char *name, const char *input) {
    cardbridge_bytes answer = {NULL, 0};
    cardbridge_error *err = NULL;
    cardbridge_result rc = fn(wp, input, strlen(input), &answer, &err);
    if (rc != CARDBRIDGE_RESULT_OK) report_error(name, rc, err);
    return answer;
}

/* answer.body.<member> as a malloc'd string, or NULL. */
static char *answer_member(const cardbridge_bytes *answer, const char *member) {
    mj_span doc, body, value;
    if (answer->data == NULL || !mj_parse((const char *)answer->data, answer->len, &doc) ||
        !mj_member(doc, "body", &body) || !mj_member(body, member, &value)) {
        return NULL;
    }
    return mj_string(value);
}

/* answer.status, or -1. */
static long long answer_status(const cardbridge_bytes *answer) {
    mj_span doc, status;
    long long n = -1;
    if (answer->data != NULL && mj_parse((const char *)answer->data, answer->len, &doc) &&
        mj_member(doc, "status", &status)) {
        mj_integer(status, &n);
    }
    return n;
}

/* ======================================================================
 * The CRM: its members and its handling of card events
 * ====================================================================== */

typedef struct {
    char code[33];
    char phone[32];
    int exchanges_granted;
} crm_member;

typedef struct {
    crm_member members[8];
    size_t count;
    int events_handled; /* how many events reached the CRM */
    const cardbridge_wechatpay *wp;
} crm_db;

static crm_member *crm_find(crm_db *db, const char *code) {
    for (size_t i = 0; i < db->count; i++) {
        if (strcmp(db->members[i].code, code) == 0) return &db->members[i];
    }
    return NULL;
}

/* A string member of `obj` as a malloc'd string, or NULL. */
static char *string_member(mj_span obj, const char *key) {
    mj_span value;
    return mj_member(obj, key, &value) ? mj_string(value) : NULL;
}

/* USER_CARD.CREATE: a new member with the phone the event carried in cleartext. */
static int on_card_created(crm_db *db, mj_span resource) {
    char *code = string_member(resource, "user_card_code");
    char *phone = string_member(resource, "phone_number");
    int ok = code != NULL && db->count < sizeof db->members / sizeof db->members[0];
    if (ok && crm_find(db, code) == NULL) {
        crm_member *m = &db->members[db->count++];
        memset(m, 0, sizeof *m);
        snprintf(m->code, sizeof m->code, "%s", code);
        snprintf(m->phone, sizeof m->phone, "%s", phone ? phone : "");
        printf("  CRM: new member for card %s (phone received in cleartext)\n", m->code);
    }
    free(code);
    free(phone);
    return ok;
}

/* POINT_EXCHANGE_COUPON: grant the coupon, then tell WeChat Pay (keyed by
 * record_id in the outbox: a redelivered event confirms once). */
static int on_exchange(crm_db *db, mj_span resource) {
    static const char *const keys[] = {"record_id", "exchange_coupon_template_id", "brand_id", "card_id", "openid",
                                       "user_card_code"};
    emu_text input = {NULL, 0, 0};
    add(&input, "{");
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof keys / sizeof keys[0]; i++) {
        char *value = string_member(resource, keys[i]);
        ok = value != NULL;
        if (ok) add_member(&input, keys[i], value, i == 0);
        free(value);
    }
    add(&input, ",\"state\":\"POINT_EXCHANGE_COUPON_SUCCESS\",\"coupon_code\":\"CRM-C-1\"}");
    if (ok) {
        cardbridge_bytes answer =
            call(db->wp, cardbridge_wechatpay_confirm_exchange_coupon, "confirm_exchange_coupon", input.p);
        char *state = answer_member(&answer, "state");
        ok = answer.data != NULL;
        printf("  CRM: exchange confirmed (%s)\n", state ? state : "?");
        char *code = string_member(resource, "user_card_code");
        crm_member *m = code ? crm_find(db, code) : NULL;
        if (ok && m != NULL) m->exchanges_granted++;
        free(code);
        free(state);
        cardbridge_bytes_free(&answer);
    }
    free(input.p);
    return ok;
}

/* The CRM's handling of a verified, decrypted event; 1 = accepted. */
static int crm_on_event(crm_db *db, const uint8_t *json, size_t len) {
    mj_span event, kind, resource;
    if (!mj_parse((const char *)json, len, &event) || !mj_member(event, "kind", &kind) ||
        !mj_member(event, "resource", &resource)) {
        return 0;
    }
    db->events_handled++;
    if (mj_string_is(kind, "USER_CARD.CREATE")) return on_card_created(db, resource);
    if (mj_string_is(kind, "POINT_EXCHANGE_COUPON")) return on_exchange(db, resource);
    return 1; /* other events (deletes, points) would be handled here */
}

/* The CRM's notify_url handler: what its web server received (method,
 * target, headers, raw body) in, the HTTP answer out (caller frees; NULL:
 * answer 500). begin -> CRM -> finish; refusals and duplicates are answered
 * by cardbridge alone. */
static cardbridge_http_response *notify_url(crm_db *db, const emu_request *req) {
    cardbridge_http_response *response = NULL;
    cardbridge_wechatpay_event *event = NULL;
    cardbridge_error *err = NULL;
    cardbridge_result rc = cardbridge_wechatpay_callback_begin(
        db->wp, req->method, strlen(req->method), req->target, strlen(req->target), req->headers, req->header_count,
        (const uint8_t *)req->body, req->body_len, now_unix_ms(), &response, &event, &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("cardbridge_wechatpay_callback_begin", rc, err);
        return NULL;
    }
    if (response != NULL) {
        printf("  cardbridge answered by itself\n");
        return response;
    }
    const uint8_t *json = NULL;
    size_t len = 0;
    int accepted = 0;
    rc = cardbridge_wechatpay_event_json(event, &json, &len, &err);
    if (rc == CARDBRIDGE_RESULT_OK) {
        accepted = crm_on_event(db, json, len);
    } else {
        report_error("cardbridge_wechatpay_event_json", rc, err);
        err = NULL;
    }
    /* Not accepted: 500, WeChat Pay redelivers the event later. */
    const char *reason = accepted ? "" : "the CRM could not handle the event";
    rc = cardbridge_wechatpay_callback_finish(db->wp, event, accepted, reason, strlen(reason), now_unix_ms(),
                                              &response, &err);
    if (rc != CARDBRIDGE_RESULT_OK) report_error("cardbridge_wechatpay_callback_finish", rc, err);
    cardbridge_wechatpay_event_free(event);
    return response;
}

/* Sends the answer (here: prints it); returns its HTTP status (0: none). */
static unsigned send_answer(cardbridge_http_response *response) {
    if (response == NULL) return 0;
    const uint8_t *body = NULL;
    size_t len = 0;
    unsigned status = cardbridge_http_response_status(response);
    if (cardbridge_http_response_body(response, &body, &len, NULL) == CARDBRIDGE_RESULT_OK) {
        printf("  answer %u: %.*s\n", status, (int)len, (const char *)body);
    }
    cardbridge_http_response_free(response);
    return status;
}

/* ======================================================================
 * Test support: WeChat Pay's side
 * ====================================================================== */

/* WeChat Pay posts an event: minted (signed, sealed) by the emulator, then
 * handled by the CRM's notify_url. `resource_json` NULL: the emulator's sample
 * USER_CARD.CREATE resource for CODE. Returns the answer's HTTP status. */
static unsigned wechat_posts(const emu_process *emu, crm_db *db, const char *event_type, const char *original_type,
                             const char *resource_json) {
    emu_request req;
    emu_text mint = {NULL, 0, 0};
    add(&mint, "{");
    add_member(&mint, "event_type", event_type, 1);
    add_member(&mint, "original_type", original_type, 0);
    if (resource_json != NULL) {
        add(&mint, ",\"resource\":");
        add(&mint, resource_json);
    } else {
        add(&mint, ",\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID "\"");
    }
    add(&mint, ",\"seed\":false}");
    if (!emu_mint(emu, "/wechatpay/mint", mint.p, &req)) fatal("the emulator did not sign the callback");
    free(mint.p);
    unsigned status = send_answer(notify_url(db, &req));
    emu_request_free(&req);
    return status;
}

/* ======================================================================
 * main: one lifecycle
 * ====================================================================== */

int main(int argc, char **argv) {
    const char *keys_dir = "tests/fixtures/keys/";
    const char *db_path = "wechat_brand_lifecycle.db";
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--keys") == 0) {
            keys_dir = argv[i + 1];
        } else if (strcmp(argv[i], "--db") == 0) {
            db_path = argv[i + 1];
        } else {
            break;
        }
    }
    if (i != argc) {
        fprintf(stderr, "usage: %s [--keys DIR/] [--db PATH]\n", argv[0]);
        return 2;
    }
    printf("CRM starting with %s\n", cardbridge_version());
    if (cardbridge_set_log_callback(CARDBRIDGE_LOG_INFO, crm_log, stdout, NULL) != CARDBRIDGE_RESULT_OK) {
        fatal("cannot set the log callback");
    }

    /* The test platform pair plays WeChat Pay's public-key pair. */
    char *wechatpay_private = read_text_file(keys_dir, "test_platform_private.pem");
    char *wechatpay_public = read_text_file(keys_dir, "test_platform_public.pem");
    char *merchant_private = read_text_file(keys_dir, "test_merchant_private.pem");
    char *merchant_public = read_text_file(keys_dir, "test_merchant_public.pem");
    if (!wechatpay_private || !wechatpay_public || !merchant_private || !merchant_public) fatal("missing key");

    /* ---- test support: WeChat Pay on loopback ---- */
    emu_text emulator_config = {NULL, 0, 0};
    add(&emulator_config, "{");
    add_member(&emulator_config, "wechatpay_private_key", wechatpay_private, 1);
    add_member(&emulator_config, "public_key_id", PUB_KEY_ID, 0);
    add_member(&emulator_config, "merchant_public_key", merchant_public, 0);
    add_member(&emulator_config, "mchid", MCHID, 0);
    add_member(&emulator_config, "merchant_serial_no", MERCHANT_SERIAL, 0);
    add_member(&emulator_config, "api_v3_key", API_V3_KEY, 0);
    add(&emulator_config, "}");
    emu_process emulator;
    if (!emu_start(&emulator, emulator_config.p)) fatal("the emulator did not start");
    printf("WeChat Pay emulator at %s; store %s\n", emulator.url, db_path);

    /* ---- the durable store and the integration ---- */
    cardbridge_error *err = NULL;
    const cardbridge_store *store = NULL;
    cardbridge_result rc = cardbridge_store_open_sqlite(db_path, strlen(db_path), &store, &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("cardbridge_store_open_sqlite", rc, err);
        fatal("cannot continue");
    }
    emu_text config = {NULL, 0, 0};
    add(&config, "{");
    add_member(&config, "mchid", MCHID, 1);
    add_member(&config, "merchant_serial_no", MERCHANT_SERIAL, 0);
    add_member(&config, "merchant_private_key", merchant_private, 0);
    add_member(&config, "api_v3_key", API_V3_KEY, 0);
    add_member(&config, "wechatpay_public_key_id", PUB_KEY_ID, 0);
    add_member(&config, "wechatpay_public_key", wechatpay_public, 0);
    add_member(&config, "base_url", emulator.url, 0);
    /* Short backoff for the demo; generous timeouts (valgrind runs ~50x slower). */
    add(&config, ",\"connect_timeout_ms\":10000,\"read_timeout_ms\":60000,"
                 "\"retry\":{\"max_attempts\":4,\"base_delay_ms\":10,\"max_delay_ms\":50,\"deadline_ms\":300000}}");
    const cardbridge_wechatpay *wp = NULL;
    rc = cardbridge_wechatpay_new(config.p, config.n, store, &wp, &err);
    cardbridge_store_free(store); /* the integration holds its own reference */
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("cardbridge_wechatpay_new", rc, err);
        fatal("cannot continue");
    }

    crm_db db;
    memset(&db, 0, sizeof db);
    db.wp = wp;
    cardbridge_bytes answer;
    char *value;

    printf("\n[0] the brand's card template, with the notify_url for its events\n");
    answer = call(wp, cardbridge_wechatpay_create_card_template, "create_card_template",
                  "{\"out_request_no\":\"CRM-TPL-0001\",\"brand_id\":\"" BRAND_ID "\",\"appid\":\"wxea9c30890f48d5ae\","
                  "\"card_type\":\"NORMAL\",\"card_title\":\"CRM Gold\",\"card_color\":\"#FFD700\","
                  "\"card_picture_url\":\"https://crm.example/card.png\",\"code_mode\":\"SYSTEM_ALLOCATE\","
                  "\"code_type\":\"QR_CODE\",\"benefits\":\"10% off\","
                  /* The public HTTPS address of the CRM's notify_url (WeChat Pay requires https). */
                  "\"notify_url\":\"https://crm.example/wechat/notify\","
                  "\"valid_date_information\":{\"type\":\"PERMANENT\"}}");
    value = answer_member(&answer, "state");
    expect(value != NULL && strcmp(value, "CARD_EFFECTIVE") == 0, "card template created (CARD_EFFECTIVE)");
    free(value);
    cardbridge_bytes_free(&answer);

    printf("\n[1] a user opens the card: WeChat Pay notifies USER_CARD.CREATE\n");
    emu_text mint = {NULL, 0, 0};
    add(&mint, "{\"event_type\":\"BRAND_MEMBER_CARD_SP.USER_CARD.CREATE\",\"original_type\":\"user_card\","
               "\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID "\",\"seed\":false}");
    emu_request opened;
    if (!emu_mint(&emulator, "/wechatpay/mint", mint.p, &opened)) fatal("the emulator did not sign the callback");
    free(mint.p);
    unsigned status = send_answer(notify_url(&db, &opened));
    crm_member *member = crm_find(&db, CODE);
    expect(status == 200 && member != NULL && member->phone[0] != '\0', "event acknowledged, member created");

    printf("\n[2] WeChat Pay redelivers the same notification\n");
    int handled = db.events_handled;
    status = send_answer(notify_url(&db, &opened));
    expect(status == 200 && db.events_handled == handled, "acknowledged, the CRM not asked again");
    emu_request_free(&opened);

    printf("\n[3] the CRM confirms the card opening\n");
    /* WeChat Pay holds the user's card; one 429 first: retried with the same request. */
    free(emu_ok(&emulator, "POST", "/wechatpay/cards",
                "{\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID
                "\",\"brand_id\":\"" BRAND_ID "\"}"));
    free(emu_ok(&emulator, "POST", "/wechatpay/faults", "{\"fault\":\"status\",\"status\":429}"));
    emu_text confirm = {NULL, 0, 0};
    add(&confirm, "{\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"brand_id\":\"" BRAND_ID
                  "\",\"openid\":\"" OPENID "\",\"user_card_confirm_state\":\"CREATE_CARD_SUCCESS\"");
    add_member(&confirm, "phone_number", member ? member->phone : "", 0); /* cleartext in, encrypted by the library */
    add(&confirm, "}");
    answer = call(wp, cardbridge_wechatpay_confirm, "confirm", confirm.p);
    free(confirm.p);
    value = answer_member(&answer, "user_card_state");
    printf("  card %s: %s after %lld attempt(s)\n", CODE, value ? value : "?",
           emu_counter(&emulator, "wechatpay", "confirm_hits", CODE));
    expect(value != NULL && strcmp(value, "EFFECTIVE") == 0, "card effective");
    expect(emu_counter(&emulator, "wechatpay", "cards_confirmed", NULL) == 1,
           "confirmed exactly once on WeChat's side");
    free(value);
    cardbridge_bytes_free(&answer);

    printf("\n[4] points sync\n");
    answer = call(wp, cardbridge_wechatpay_sync_user_points, "sync_user_points",
                  "{\"out_request_no\":\"CRM-PTS-0001\",\"brand_id\":\"" BRAND_ID "\",\"card_id\":\"" CARD_ID
                  "\",\"openid\":\"" OPENID "\",\"user_card_code\":\"" CODE "\",\"point_balance\":120}");
    expect(answer_status(&answer) == 204, "points synced");
    cardbridge_bytes_free(&answer);

    printf("\n[5] a member feed\n");
    answer = call(wp, cardbridge_wechatpay_create_user_feed, "create_user_feed",
                  "{" CARD_MEMBERS ",\"out_request_no\":\"CRM-FEED-0001\",\"cell\":\"+120 points\"}");
    expect(answer_status(&answer) == 200, "feed posted");
    cardbridge_bytes_free(&answer);

    printf("\n[6] a points-for-coupon exchange: WeChat Pay notifies POINT_EXCHANGE_COUPON\n");
    status = wechat_posts(&emulator, &db, "BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON", "point_coupon",
                          "{" CARD_MEMBERS ",\"record_id\":\"REC-0001\",\"exchange_coupon_template_id\":\"0Flpo7FqTQ\","
                          "\"deduct_points\":100,\"stock_id\":\"98065001\"}");
    member = crm_find(&db, CODE);
    expect(status == 200 && member != NULL && member->exchanges_granted == 1, "exchange event handled and confirmed");

    printf("\n[7] the member leaves\n");
    answer = call(wp, cardbridge_wechatpay_invalidate_user_card, "invalidate_user_card",
                  "{" CARD_MEMBERS "}");
    expect(answer.data == NULL, "an invalidation without a reason is refused");
    answer = call(wp, cardbridge_wechatpay_invalidate_user_card, "invalidate_user_card",
                  "{" CARD_MEMBERS ",\"invalid_reason\":\"member left\"}");
    value = answer_member(&answer, "user_card_state");
    expect(value != NULL && strcmp(value, "INVALID") == 0, "card invalidated");
    free(value);
    cardbridge_bytes_free(&answer);

    printf("\nemulator: %lld WeChat Pay requests\n", emu_counter(&emulator, "wechatpay", "hits", NULL));
    cardbridge_bytes metrics = {NULL, 0};
    if (cardbridge_wechatpay_metrics(wp, &metrics, NULL) == CARDBRIDGE_RESULT_OK) {
        printf("metrics: %.*s\n", (int)metrics.len, (const char *)metrics.data);
        cardbridge_bytes_free(&metrics);
    }
    cardbridge_set_log_callback(CARDBRIDGE_LOG_INFO, NULL, NULL, NULL);

    cardbridge_wechatpay_free(wp);
    emu_stop(&emulator);
    free(config.p);
    free(emulator_config.p);
    free(wechatpay_private);
    free(wechatpay_public);
    free(merchant_private);
    free(merchant_public);

    printf("lifecycle finished: %d unexpected outcome(s)\n", surprises);
    return surprises == 0 ? 0 : 1;
}
