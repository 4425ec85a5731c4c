/* Bring your own transport through the C ABI: issueCard and WeChat Pay
 * confirm prepared by the library, exchanged by this program's own tiny
 * HTTP/1.1 client (plain sockets), completed by the library. Covers a first
 * send, an HTTP 500 answer (a retry request comes back, after a wait), a
 * duplicate (the stored answer, no second send), a tampered confirm answer
 * (not trusted: a read-back of the card comes next), a prepared request
 * freed without completing, bad arguments, and every object freed.
 *
 * Usage: byo_transport <keys dir with trailing '/'> [sqlite path]
 * ($CARDBRIDGE_BIN: the cardbridge binary, else `cardbridge` on PATH)
 * Prints one line per check; exits 0 only if every check passed.
 * Built and run (also under valgrind and ASan) by tests/c_programs.rs. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, unlink, close, popen, sockets, nanosleep */

#include <unistd.h>

#include "common.h"

#define CLIENT_ID "2022TEST_CLIENT"
#define PUB_KEY_ID "PUB_KEY_ID_0114232134912410000000000000"
#define MCHID "1900000001"
#define MERCHANT_SERIAL "5F1C72E2A8931B72A2E13AF8DEE92471EB397115"
#define API_V3_KEY "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
#define CODE "778515832665"
#define CARD_ID "pbLatjvWOibDc5-TBnbUk1pD12o0"
#define OPENID "obLatjnx9gnqzS4myYGmLZ7LgLBA"

#define S(lit) lit, sizeof(lit) - 1 /* a string literal as pointer + length */

#define ISSUE_CARD(request_id)                                                                     \
    "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"requestId\":\"" request_id    \
    "\",\"customerId\":\"210911290000\",\"externalCustomerId\":\"M-000123\","                     \
    "\"registerDate\":\"2019-11-27T19:07:41+08:00\","                                             \
    "\"cardFields\":[{\"fieldCode\":\"POINT\",\"fieldValue\":\"123\"}]}"

#define CONFIRM                                                                                    \
    "{\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"brand_id\":\"1004\","        \
    "\"openid\":\"" OPENID "\",\"phone_number\":\"13800000000\","                                 \
    "\"user_card_confirm_state\":\"CREATE_CARD_SUCCESS\"}"

/* ---- the host's own HTTP client ------------------------------------------ */

#define MAX_HEADERS 32

/* A raw answer: status, header views into `raw`, the body. */
typedef struct {
    uint32_t reply; /* CARDBRIDGE_REPLY_* */
    uint16_t status;
    char *raw;
    cardbridge_header headers[MAX_HEADERS];
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
} answer;

static void answer_free(answer *a) {
    free(a->raw);
    memset(a, 0, sizeof *a);
}

/* Copies one borrowed text view of `p` (a _method/_url accessor) into a C string (caller frees). */
typedef cardbridge_result (*view_fn)(const cardbridge_prepared *, const char **, size_t *, cardbridge_error **);
static char *view_text(view_fn fn, const cardbridge_prepared *p) {
    const char *data = NULL;
    size_t len = 0;
    cardbridge_error *err = NULL;
    if (fn(p, &data, &len, &err) != CARDBRIDGE_RESULT_OK) {
        report_error("prepared view", CARDBRIDGE_RESULT_INTERNAL, err);
        return NULL;
    }
    char *s = malloc(len + 1);
    require(s != NULL, "malloc");
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

/* Sends `p` as it is (method, URL, every header, the body) over a loopback
 * socket and reads the whole answer (Connection: close). */
static answer exchange(const cardbridge_prepared *p) {
    answer a;
    memset(&a, 0, sizeof a);
    a.reply = CARDBRIDGE_REPLY_NOT_SENT;
    char *method = view_text(cardbridge_prepared_method, p);
    char *url = view_text(cardbridge_prepared_url, p);
    require(method != NULL && url != NULL && strncmp(url, "http://127.0.0.1:", 17) == 0, "loopback URL");
    unsigned port = (unsigned)atoi(url + 17);
    const char *target = strchr(url + 17, '/');
    require(target != NULL, "URL has a path");
    const uint8_t *body = NULL;
    size_t body_len = 0;
    cardbridge_error *err = NULL;
    require(cardbridge_prepared_body(p, &body, &body_len, &err) == CARDBRIDGE_RESULT_OK, "body view");

    strbuf req = {0};
    sb_append(&req, method);
    sb_append(&req, " ");
    sb_append(&req, target);
    char line[128];
    snprintf(line, sizeof line, " HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n", port);
    sb_append(&req, line);
    for (size_t i = 0; i < cardbridge_prepared_header_count(p); i++) {
        cardbridge_header h;
        require(cardbridge_prepared_header(p, i, &h, &err) == CARDBRIDGE_RESULT_OK, "header view");
        sb_append_n(&req, h.name, h.name_len);
        sb_append(&req, ": ");
        sb_append_n(&req, h.value, h.value_len);
        sb_append(&req, "\r\n");
    }
    snprintf(line, sizeof line, "Content-Length: %zu\r\n\r\n", body_len);
    sb_append(&req, line);
    if (body_len > 0) sb_append_n(&req, (const char *)body, body_len);
    free(method);
    free(url);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0) close(fd);
        sb_free(&req);
        return a; /* never connected: certainly not sent */
    }
    a.reply = CARDBRIDGE_REPLY_NO_ANSWER; /* from here on it may have been sent */
    int ok = 1;
    for (size_t sent = 0; ok && sent < req.len;) {
        ssize_t n = send(fd, req.data + sent, req.len - sent, 0);
        ok = n > 0;
        sent += ok ? (size_t)n : 0;
    }
    sb_free(&req);
    strbuf got = {0};
    char chunk[4096];
    ssize_t n;
    while (ok && (n = recv(fd, chunk, sizeof chunk, 0)) > 0) sb_append_n(&got, chunk, (size_t)n);
    close(fd);
    char *end = got.data ? strstr(got.data, "\r\n\r\n") : NULL;
    if (!ok || end == NULL || strncmp(got.data, "HTTP/1.1 ", 9) != 0) {
        sb_free(&got);
        return a;
    }
    a.raw = got.data;
    a.status = (uint16_t)atoi(got.data + 9);
    a.body = (const uint8_t *)end + 4;
    a.body_len = got.len - (size_t)(end + 4 - got.data);
    /* Header lines: "Name: value" between the status line and the blank line. */
    char *cursor = strstr(got.data, "\r\n") + 2;
    while (cursor < end && a.header_count < MAX_HEADERS) {
        char *eol = strstr(cursor, "\r\n");
        char *colon = memchr(cursor, ':', (size_t)(eol - cursor));
        if (colon != NULL) {
            char *value = colon + 1;
            while (*value == ' ') value++;
            cardbridge_header *h = &a.headers[a.header_count++];
            h->name = cursor;
            h->name_len = (size_t)(colon - cursor);
            h->value = value;
            h->value_len = (size_t)(eol - value);
        }
        cursor = eol + 2;
    }
    a.reply = CARDBRIDGE_REPLY_ANSWERED;
    return a;
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- driving the two calls ------------------------------------------------ */

typedef cardbridge_result (*complete_fn)(const void *handle, cardbridge_prepared *, uint32_t, uint16_t,
                                         const cardbridge_header *, size_t, const uint8_t *, size_t,
                                         cardbridge_bytes *, cardbridge_prepared **, cardbridge_error **);

static cardbridge_result complete_issue_card(const void *h, cardbridge_prepared *p, uint32_t reply, uint16_t status,
                                             const cardbridge_header *hs, size_t hn, const uint8_t *b, size_t bn,
                                             cardbridge_bytes *out, cardbridge_prepared **next,
                                             cardbridge_error **err) {
    return cardbridge_alipayplus_issue_card_complete(h, p, reply, status, hs, hn, b, bn, out, next, err);
}

static cardbridge_result complete_confirm(const void *h, cardbridge_prepared *p, uint32_t reply, uint16_t status,
                                          const cardbridge_header *hs, size_t hn, const uint8_t *b, size_t bn,
                                          cardbridge_bytes *out, cardbridge_prepared **next, cardbridge_error **err) {
    return cardbridge_wechatpay_confirm_complete(h, p, reply, status, hs, hn, b, bn, out, next, err);
}

/* What a drive saw: the purposes of the requests, in order, and waits. */
typedef struct {
    uint32_t purposes[8];
    uint64_t waits[8];
    int count;
} trace;

/* Exchanges and completes until a final answer or an error. `tamper`: flip
 * one body byte of the answer to the first send. */
static cardbridge_result drive(const void *handle, complete_fn complete, cardbridge_prepared *p, int tamper,
                               cardbridge_bytes *out, trace *t, cardbridge_error **err) {
    cardbridge_result rc = CARDBRIDGE_RESULT_OK;
    while (p != NULL) {
        uint32_t purpose = cardbridge_prepared_purpose(p);
        if (t->count < 8) {
            t->purposes[t->count] = purpose;
            t->waits[t->count] = cardbridge_prepared_wait_ms(p);
        }
        t->count++;
        sleep_ms(cardbridge_prepared_wait_ms(p));
        answer a = exchange(p);
        if (tamper && t->count == 1 && a.reply == CARDBRIDGE_REPLY_ANSWERED && a.body_len > 0) {
            uint8_t *at = memchr(a.body, 'E', a.body_len);
            if (at != NULL) *at = 'F';
        }
        cardbridge_prepared *next = NULL;
        rc = complete(handle, p, a.reply, a.status, a.headers, a.header_count, a.body, a.body_len, out, &next, err);
        answer_free(&a);
        p = rc == CARDBRIDGE_RESULT_OK ? next : NULL;
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <keys dir/> [sqlite path]\n", argv[0]);
        return 2;
    }
    const char *keys = argv[1];
    char *platform_private = read_file(keys, "test_platform_private.pem");
    char *platform_public = read_file(keys, "test_platform_public.pem");
    char *merchant_private = read_file(keys, "test_merchant_private.pem");
    char *merchant_public = read_file(keys, "test_merchant_public.pem");
    cardbridge_error *err = NULL;
    cardbridge_result rc;
    require(now_unix_ms() > 0, "clock");

    /* One emulator for both platforms. */
    strbuf emu_config = {0};
    sb_append(&emu_config, "{");
    sb_member(&emu_config, "platform_private_key", platform_private, 1);
    sb_member(&emu_config, "merchant_public_key", merchant_public, 0);
    sb_member(&emu_config, "client_id", CLIENT_ID, 0);
    sb_member(&emu_config, "wechatpay_private_key", platform_private, 0);
    sb_member(&emu_config, "public_key_id", PUB_KEY_ID, 0);
    sb_member(&emu_config, "mchid", MCHID, 0);
    sb_member(&emu_config, "merchant_serial_no", MERCHANT_SERIAL, 0);
    sb_member(&emu_config, "api_v3_key", API_V3_KEY, 0);
    sb_append(&emu_config, "}");
    emu_process emulator;
    require(check(emu_start(&emulator, emu_config.data), "emulator started"), "emulator");

    const cardbridge_store *store = NULL;
    rc = cardbridge_store_new_memory(&store, &err);
    require(check_ok(rc, err, "memory store"), "store");
    err = NULL;

    /* Generous timeouts: under valgrind everything runs ~50x slower. */
    const char *tuning = ",\"connect_timeout_ms\":10000,\"read_timeout_ms\":60000,"
                         "\"retry\":{\"max_attempts\":3,\"base_delay_ms\":10,\"max_delay_ms\":50,"
                         "\"deadline_ms\":300000}}";
    strbuf config = {0};
    sb_append(&config, "{");
    sb_member(&config, "client_id", CLIENT_ID, 1);
    sb_member(&config, "merchant_private_key", merchant_private, 0);
    sb_member(&config, "platform_public_key", platform_public, 0);
    sb_member(&config, "base_url", emulator.url, 0);
    sb_append(&config, tuning);
    const cardbridge_alipayplus *ap = NULL;
    rc = cardbridge_alipayplus_new(config.data, config.len, store, &ap, &err);
    require(check_ok(rc, err, "Alipay+ integration"), "alipayplus");
    err = NULL;
    sb_free(&config);
    sb_append(&config, "{");
    sb_member(&config, "mchid", MCHID, 1);
    sb_member(&config, "merchant_serial_no", MERCHANT_SERIAL, 0);
    sb_member(&config, "merchant_private_key", merchant_private, 0);
    sb_member(&config, "api_v3_key", API_V3_KEY, 0);
    sb_member(&config, "wechatpay_public_key_id", PUB_KEY_ID, 0);
    sb_member(&config, "wechatpay_public_key", platform_public, 0);
    sb_member(&config, "base_url", emulator.url, 0);
    sb_append(&config, tuning);
    const cardbridge_wechatpay *wp = NULL;
    rc = cardbridge_wechatpay_new(config.data, config.len, store, &wp, &err);
    require(check_ok(rc, err, "WeChat Pay integration"), "wechatpay");
    err = NULL;
    cardbridge_store_free(store);

    /* ---- issueCard: prepare, look at the request, a 500, then S ---- */
    char *queued = emu_ok(&emulator, "POST", "/alipayplus/faults", "{\"fault\":\"http_status\",\"status\":500}");
    check(queued != NULL, "HTTP 500 queued");
    free(queued);
    cardbridge_bytes card = {NULL, 0};
    cardbridge_prepared *p = NULL;
    rc = cardbridge_alipayplus_issue_card_prepare(ap, S(ISSUE_CARD("C-BYO-1")), &card, &p, &err);
    check_ok(rc, err, "issueCard prepared");
    err = NULL;
    require(p != NULL && card.data == NULL, "a new request is to be sent");
    check(cardbridge_prepared_purpose(p) == CARDBRIDGE_PURPOSE_SEND, "purpose: send");
    check(cardbridge_prepared_wait_ms(p) == 0, "no wait before the first send");
    char *method = view_text(cardbridge_prepared_method, p);
    char *url = view_text(cardbridge_prepared_url, p);
    char *outbox_id = view_text(cardbridge_prepared_outbox_id, p);
    check(method && strcmp(method, "POST") == 0, "method %s", method ? method : "?");
    check(url && strstr(url, "/v2/pds/memberships/issueCard") != NULL, "URL %s", url ? url : "?");
    check(outbox_id && strcmp(outbox_id, "alipayplus.issueCard/2102010113769000/C-BYO-1") == 0, "outbox id %s",
          outbox_id ? outbox_id : "?");
    free(method);
    free(url);
    free(outbox_id);
    int signed_header = 0;
    for (size_t i = 0; i < cardbridge_prepared_header_count(p); i++) {
        cardbridge_header h;
        if (cardbridge_prepared_header(p, i, &h, &err) == CARDBRIDGE_RESULT_OK && h.name_len == 9 &&
            memcmp(h.name, "Signature", 9) == 0)
            signed_header = 1;
    }
    check(signed_header, "the request carries its Signature header");
    cardbridge_header none;
    rc = cardbridge_prepared_header(p, 99, &none, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_INVALID_PARAMETER, "index", NULL, "header 99");
    err = NULL;
    check(emu_counter(&emulator, "alipayplus", "hits", "C-BYO-1") == 0, "nothing sent by the library");

    trace t = {{0}, {0}, 0};
    rc = drive(ap, complete_issue_card, p, 0, &card, &t, &err);
    check_ok(rc, err, "issueCard completed over the host's transport");
    err = NULL;
    check(card.data != NULL && strstr((const char *)card.data, "\"cardNo\"") != NULL, "answer has cardNo");
    check(t.count == 2 && t.purposes[1] == CARDBRIDGE_PURPOSE_SEND && t.waits[1] > 0,
          "the 500 gave a retry request after a wait (%d requests)", t.count);
    check(emu_counter(&emulator, "alipayplus", "hits", "C-BYO-1") == 2, "two sends reached the platform");

    /* Duplicate: the stored answer, byte for byte; nothing to send. */
    cardbridge_bytes again = {NULL, 0};
    p = NULL;
    rc = cardbridge_alipayplus_issue_card_prepare(ap, S(ISSUE_CARD("C-BYO-1")), &again, &p, &err);
    check_ok(rc, err, "duplicate prepared");
    err = NULL;
    check(p == NULL && again.data != NULL && again.len == card.len && memcmp(again.data, card.data, card.len) == 0,
          "duplicate answered from the outbox, byte-identical");
    check(emu_counter(&emulator, "alipayplus", "hits", "C-BYO-1") == 2, "no second send");
    cardbridge_bytes_free(&again);
    cardbridge_bytes_free(&card);

    /* A prepared request freed without completing: the entry stays pending; the next call finishes it. */
    rc = cardbridge_alipayplus_issue_card_prepare(ap, S(ISSUE_CARD("C-BYO-2")), &card, &p, &err);
    check_ok(rc, err, "second issueCard prepared");
    err = NULL;
    cardbridge_prepared_free(p);
    cardbridge_prepared_free(NULL);

    /* Bad arguments: an unknown reply consumes the prepared request too. */
    p = NULL;
    rc = cardbridge_alipayplus_issue_card_prepare(ap, S(ISSUE_CARD("C-BYO-3")), &card, &p, &err);
    check_ok(rc, err, "third issueCard prepared");
    err = NULL;
    cardbridge_prepared *next = NULL;
    rc = cardbridge_alipayplus_issue_card_complete(ap, p, 77, 0, NULL, 0, NULL, 0, &card, &next, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_INVALID_PARAMETER, "reply", NULL, "reply 77");
    err = NULL;
    rc = cardbridge_alipayplus_issue_card_complete(ap, NULL, CARDBRIDGE_REPLY_NOT_SENT, 0, NULL, 0, NULL, 0, &card,
                                                   &next, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_NULL_PARAMETER, "prepared", NULL, "NULL prepared");
    err = NULL;
    rc = cardbridge_alipayplus_issue_card_prepare(ap, S("{}"), &card, &p, &err);
    check(rc == CARDBRIDGE_RESULT_VALIDATION || rc == CARDBRIDGE_RESULT_INVALID_JSON, "bad request refused: %s",
          cardbridge_result_name(rc));
    cardbridge_error_free(err);
    err = NULL;
    check(cardbridge_prepared_purpose(NULL) == 0 && cardbridge_prepared_header_count(NULL) == 0,
          "getters of NULL answer 0");

    /* ---- WeChat Pay confirm: a tampered answer is not trusted; a read-back decides ---- */
    char *seeded = emu_ok(&emulator, "POST", "/wechatpay/cards",
                          "{\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID
                          "\",\"brand_id\":\"1004\"}");
    require(check(seeded != NULL, "emulator holds the user card"), "add_user_card");
    free(seeded);
    cardbridge_bytes confirmed = {NULL, 0};
    p = NULL;
    rc = cardbridge_wechatpay_confirm_prepare(wp, S(CONFIRM), &confirmed, &p, &err);
    check_ok(rc, err, "confirm prepared");
    err = NULL;
    require(p != NULL, "confirm request");
    /* An issueCard completion refuses a confirm's request (and consumes it). */
    rc = cardbridge_alipayplus_issue_card_complete(ap, p, CARDBRIDGE_REPLY_NOT_SENT, 0, NULL, 0, NULL, 0, &card,
                                                   &next, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_INVALID_PARAMETER, "prepared", NULL, "confirm request to issueCard");
    err = NULL;
    rc = cardbridge_wechatpay_confirm_prepare(wp, S(CONFIRM), &confirmed, &p, &err);
    check_ok(rc, err, "confirm prepared again");
    err = NULL;
    require(p != NULL, "confirm request");
    check(cardbridge_prepared_purpose(p) == CARDBRIDGE_PURPOSE_READ_BACK,
          "an entry that existed before starts with a read-back");
    trace c = {{0}, {0}, 0};
    rc = drive(wp, complete_confirm, p, 0, &confirmed, &c, &err);
    check_ok(rc, err, "confirm completed");
    err = NULL;
    check(c.count == 1 || (c.count == 2 && c.purposes[1] == CARDBRIDGE_PURPOSE_SEND), "read-back then send");
    check(confirmed.data && strstr((const char *)confirmed.data, "\"user_card_state\":\"EFFECTIVE\""),
          "the card is EFFECTIVE");
    cardbridge_bytes_free(&confirmed);

    /* A second card, its confirm answer tampered in transit. */
    seeded = emu_ok(&emulator, "POST", "/wechatpay/cards",
                    "{\"user_card_code\":\"7785\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID
                    "\",\"brand_id\":\"1004\"}");
    free(seeded);
    rc = cardbridge_wechatpay_confirm_prepare(
        wp,
        S("{\"user_card_code\":\"7785\",\"card_id\":\"" CARD_ID "\",\"brand_id\":\"1004\",\"openid\":\"" OPENID
          "\",\"user_card_confirm_state\":\"CREATE_CARD_SUCCESS\"}"),
        &confirmed, &p, &err);
    check_ok(rc, err, "second confirm prepared");
    err = NULL;
    trace d = {{0}, {0}, 0};
    rc = drive(wp, complete_confirm, p, 1, &confirmed, &d, &err);
    check_ok(rc, err, "tampered confirm completed");
    err = NULL;
    check(d.count == 2 && d.purposes[0] == CARDBRIDGE_PURPOSE_SEND && d.purposes[1] == CARDBRIDGE_PURPOSE_READ_BACK,
          "after the unverifiable answer: a read-back, never a blind re-send (%d requests)", d.count);
    check(emu_counter(&emulator, "wechatpay", "confirm_hits", "7785") == 1, "one confirm sent");
    check(confirmed.data && strstr((const char *)confirmed.data, "\"user_card_state\":\"EFFECTIVE\""),
          "the read-back shows the card EFFECTIVE");
    cardbridge_bytes_free(&confirmed);

    cardbridge_alipayplus_free(ap);
    cardbridge_wechatpay_free(wp);
    emu_stop(&emulator);
    sb_free(&emu_config);
    sb_free(&config);
    free(platform_private);
    free(platform_public);
    free(merchant_private);
    free(merchant_public);
    printf("%d checks, %d failed\n", checks_run, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
