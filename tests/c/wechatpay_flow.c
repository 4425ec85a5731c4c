/* End-to-end WeChat Pay card opening through the C ABI, as a C host would
 * write it: the `cardbridge emulator` binary playing WeChat Pay (started and
 * driven through its control API by examples/c/emulator_client.h), a SQLite
 * store, the integration from JSON
 * config, a signed USER_CARD.CREATE callback handled with begin -> event ->
 * finish, a duplicate, a signature probe and a stale callback, then the
 * confirm (cleartext phone in, EFFECTIVE card out), its repeat answered from
 * the outbox, validation detail, a card template created and the member's
 * card invalidated (brand family), and every object freed.
 *
 * Usage: wechatpay_flow <keys dir with trailing '/'> [sqlite path]
 * ($CARDBRIDGE_BIN: the cardbridge binary, else `cardbridge` on PATH)
 * Prints one line per check; exits 0 only if every check passed.
 * Built and run (also under valgrind) by tests/c_programs.rs. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, unlink, close, popen, sockets */

#include <unistd.h>

#include "common.h"

#define PUB_KEY_ID "PUB_KEY_ID_0114232134912410000000000000"
#define MCHID "1900000001"
#define MERCHANT_SERIAL "5F1C72E2A8931B72A2E13AF8DEE92471EB397115"
#define API_V3_KEY "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
#define EVENT_TYPE "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE"
#define CODE "478515832665"
#define CARD_ID "pbLatjvWOibDc5-TBnbUk1pD12o0"
#define OPENID "obLatjnx9gnqzS4myYGmLZ7LgLBA"
#define BRAND_ID "1004"
#define PHONE "13800000000"

#define S(lit) lit, sizeof(lit) - 1 /* a string literal as pointer + length */

/* The confirm a CRM sends once it has opened the member account; sensitive
 * fields (phone, user information values) in cleartext. */
#define CONFIRM_INPUT(code, extra)                                                                 \
    "{\"user_card_code\":\"" code "\",\"card_id\":\"" CARD_ID "\",\"brand_id\":\"" BRAND_ID        \
    "\",\"openid\":\"" OPENID "\",\"phone_number\":\"" PHONE "\","                                 \
    "\"user_information\":{\"common_field_list\":[{\"name\":\"USER_FORM_FLAG_NAME\","              \
    "\"value\":\"Li Lei\"}]},\"user_card_confirm_state\":\"CREATE_CARD_SUCCESS\"" extra "}"

static int64_t now_unix(void) { return now_unix_ms() / 1000; }

/* Every log event as one line of text, plus the metrics read from inside the
 * callback (a reentrant call: the events it would cause are dropped). */
typedef struct {
    strbuf text;
    int count;
    const cardbridge_wechatpay *wp;
    int reentered;
} log_sink;

static void on_log(void *user_data, const cardbridge_log_event *event) {
    log_sink *sink = user_data;
    sb_append_n(&sink->text, event->target, event->target_len);
    sb_append(&sink->text, " ");
    sb_append_n(&sink->text, event->message, event->message_len);
    sb_append(&sink->text, " ");
    sb_append_n(&sink->text, event->fields_json, event->fields_json_len);
    sb_append(&sink->text, "\n");
    sink->count++;
    if (sink->wp != NULL) {
        cardbridge_bytes m = {NULL, 0};
        if (cardbridge_wechatpay_metrics(sink->wp, &m, NULL) == CARDBRIDGE_RESULT_OK) sink->reentered++;
        cardbridge_bytes_free(&m);
    }
}

/* What cardbridge_wechatpay_callback_begin produced. */
typedef struct {
    cardbridge_http_response *response;
    cardbridge_wechatpay_event *event;
} began;

/* Feeds an emulator-minted callback to the integration as a host's HTTP
 * server hands over what it received. */
static began handle(const cardbridge_wechatpay *wp, const emu_request *req) {
    began out = {NULL, NULL};
    cardbridge_error *err = NULL;
    cardbridge_result rc = cardbridge_wechatpay_callback_begin(
        wp, req->method, strlen(req->method), req->target, strlen(req->target), req->headers, req->header_count,
        (const uint8_t *)req->body, req->body_len, now_unix_ms(), &out.response, &out.event, &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("callback_begin", rc, err);
        require(0, "cardbridge_wechatpay_callback_begin");
    }
    require((out.response == NULL) != (out.event == NULL), "begin sets exactly one of response / event");
    return out;
}

/* A signed USER_CARD.CREATE callback for card CODE (the emulator's sample
 * resource, sealed), spoiled as `tamper` says (`none`, `probe`, `stale`). */
static emu_request mint(const emu_process *emu, const char *tamper) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"event_type\":\"" EVENT_TYPE "\",\"original_type\":\"user_card\",\"user_card_code\":\"" CODE
             "\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID "\",\"now_unix\":%lld,\"tamper\":\"%s\","
             "\"seed\":false}",
             (long long)now_unix(), tamper);
    emu_request req;
    require(emu_mint(emu, "/wechatpay/mint", body, &req), "the emulator mints a signed callback");
    return req;
}

/* A view of a response body. */
static const uint8_t *response_body(const cardbridge_http_response *resp, size_t *len) {
    const uint8_t *body = NULL;
    cardbridge_error *err = NULL;
    require(cardbridge_http_response_body(resp, &body, len, &err) == CARDBRIDGE_RESULT_OK, "response body");
    return body;
}

/* Whether `needle` occurs in the `len` bytes at `hay` (views are not NUL-terminated). */
static int contains(const uint8_t *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i + n <= len; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Checks a refused callback: a response with `status` and code FAIL, no event. */
static void check_refused(const cardbridge_wechatpay *wp, const emu_process *emu, const char *tamper,
                          uint16_t status, const char *what) {
    emu_request req = mint(emu, tamper);
    began b = handle(wp, &req);
    check(b.response != NULL && b.event == NULL, "%s is answered without the host", what);
    if (b.response != NULL) {
        size_t len = 0;
        const uint8_t *body = response_body(b.response, &len);
        uint16_t got = cardbridge_http_response_status(b.response);
        check(got == status && contains(body, len, "\"code\":\"FAIL\""), "%s is refused with %u (got %u)", what,
              (unsigned)status, (unsigned)got);
    }
    cardbridge_http_response_free(b.response);
    cardbridge_wechatpay_event_free(b.event);
    emu_request_free(&req);
}

/* Removes the SQLite file and its WAL side files. */
static void remove_db(const char *path) {
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        strbuf file = {0};
        sb_append(&file, path);
        sb_append(&file, suffixes[i]);
        unlink(file.data);
        sb_free(&file);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <keys dir/> [sqlite path]\n", argv[0]);
        return 2;
    }
    const char *keys = argv[1];
    /* The test platform pair plays WeChat Pay's public-key pair. */
    char *wechatpay_private = read_file(keys, "test_platform_private.pem");
    char *wechatpay_public = read_file(keys, "test_platform_public.pem");
    char *merchant_private = read_file(keys, "test_merchant_private.pem");
    char *merchant_public = read_file(keys, "test_merchant_public.pem");

    char db_path[256];
    if (argc >= 3) {
        snprintf(db_path, sizeof db_path, "%s", argv[2]);
    } else {
        snprintf(db_path, sizeof db_path, "/tmp/cardbridge-c-wechat-XXXXXX");
        int fd = mkstemp(db_path);
        require(fd >= 0, "mkstemp");
        close(fd);
    }

    cardbridge_error *err = NULL;
    cardbridge_result rc;
    log_sink sink = {{0}, 0, NULL, 0};
    rc = cardbridge_set_log_callback(CARDBRIDGE_LOG_TRACE, on_log, &sink, &err);
    check_ok(rc, err, "log callback set");
    err = NULL;

    /* ---- emulator ---- */
    strbuf emu_config = {0};
    sb_append(&emu_config, "{");
    sb_member(&emu_config, "wechatpay_private_key", wechatpay_private, 1);
    sb_member(&emu_config, "public_key_id", PUB_KEY_ID, 0);
    sb_member(&emu_config, "merchant_public_key", merchant_public, 0);
    sb_member(&emu_config, "mchid", MCHID, 0);
    sb_member(&emu_config, "merchant_serial_no", MERCHANT_SERIAL, 0);
    sb_member(&emu_config, "api_v3_key", API_V3_KEY, 0);
    sb_append(&emu_config, "}");
    emu_process emulator;
    const emu_process *emu = &emulator;
    require(check(emu_start(&emulator, emu_config.data), "WeChat Pay emulator started"), "emulator");
    check(strncmp(emulator.url, "http://127.0.0.1:", 17) == 0, "emulator URL is %s", emulator.url);

    /* ---- store and integration ---- */
    const cardbridge_store *store = NULL;
    rc = cardbridge_store_open_sqlite(db_path, strlen(db_path), &store, &err);
    require(check_ok(rc, err, "SQLite store opened"), "store");
    err = NULL;

    strbuf config = {0};
    sb_append(&config, "{");
    sb_member(&config, "mchid", MCHID, 1);
    sb_member(&config, "merchant_serial_no", MERCHANT_SERIAL, 0);
    sb_member(&config, "merchant_private_key", merchant_private, 0);
    sb_member(&config, "api_v3_key", API_V3_KEY, 0);
    sb_member(&config, "wechatpay_public_key_id", PUB_KEY_ID, 0);
    sb_member(&config, "wechatpay_public_key", wechatpay_public, 0);
    sb_member(&config, "base_url", emulator.url, 0);
    /* Generous timeouts: under valgrind everything runs ~50x slower. */
    sb_append(&config, ",\"connect_timeout_ms\":10000,\"read_timeout_ms\":60000,"
                       "\"retry\":{\"max_attempts\":3,\"base_delay_ms\":10,\"max_delay_ms\":50,"
                       "\"deadline_ms\":300000}}");
    const cardbridge_wechatpay *wp = NULL;
    rc = cardbridge_wechatpay_new(config.data, config.len, store, &wp, &err);
    sink.wp = wp;
    require(check_ok(rc, err, "integration created from JSON config"), "integration");
    err = NULL;
    /* The integration keeps its own reference to the store. */
    cardbridge_store_free(store);

    /* ---- USER_CARD.CREATE callback: begin -> event -> finish ---- */
    emu_request req = mint(emu, "none");
    check(!contains((const uint8_t *)req.body, req.body_len, PHONE), "the phone is not in the callback body (sealed)");
    began b = handle(wp, &req);
    check(b.event != NULL && b.response == NULL, "signed callback reaches the host as an event");
    require(b.event != NULL, "event");
    const uint8_t *event_json = NULL;
    size_t event_json_len = 0;
    rc = cardbridge_wechatpay_event_json(b.event, &event_json, &event_json_len, &err);
    check_ok(rc, err, "event JSON readable");
    err = NULL;
    check(contains(event_json, event_json_len, "\"kind\":\"USER_CARD.CREATE\""), "event kind is USER_CARD.CREATE");
    check(contains(event_json, event_json_len, "\"phone_number\":\"" PHONE "\""),
          "event carries the decrypted phone in cleartext");
    check(contains(event_json, event_json_len, "\"user_card_code\":\"" CODE "\""), "event names user card " CODE);
    check(contains(event_json, event_json_len, "\"undecryptable\":[]"), "every sensitive field decrypted");

    cardbridge_http_response *answer = NULL;
    rc = cardbridge_wechatpay_callback_finish(wp, b.event, true, NULL, 0, now_unix_ms(), &answer, &err);
    check_ok(rc, err, "finish accepted");
    err = NULL;
    require(answer != NULL, "answer");
    size_t answer_len = 0;
    const uint8_t *answer_body = response_body(answer, &answer_len);
    check(cardbridge_http_response_status(answer) == 200, "answer status 200");
    check(contains(answer_body, answer_len, "\"code\":\"SUCCESS\""), "answer says SUCCESS");
    cardbridge_http_response_free(answer);

    cardbridge_http_response *again = NULL;
    rc = cardbridge_wechatpay_callback_finish(wp, b.event, true, NULL, 0, now_unix_ms(), &again, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_ALREADY_USED, "event", NULL, "second finish");
    err = NULL;
    check(again == NULL, "second finish wrote no response");
    cardbridge_wechatpay_event_free(b.event);

    /* ---- duplicate: acknowledged from the store, no event ---- */
    began d = handle(wp, &req);
    check(d.response != NULL && d.event == NULL, "duplicate is acknowledged without an event");
    if (d.response != NULL) {
        size_t len = 0;
        const uint8_t *body = response_body(d.response, &len);
        check(cardbridge_http_response_status(d.response) == 200 && contains(body, len, "\"code\":\"SUCCESS\""),
              "duplicate gets 200 SUCCESS");
    }
    cardbridge_http_response_free(d.response);
    cardbridge_wechatpay_event_free(d.event);
    emu_request_free(&req);

    /* ---- refusals: signature probe, stale timestamp ---- */
    check_refused(wp, emu, "probe", 401, "WECHATPAY/SIGNTEST probe");
    check_refused(wp, emu, "stale", 401, "10-minute-old callback");

    /* ---- confirm: open the card ---- */
    char *seeded = emu_ok(emu, "POST", "/wechatpay/cards",
                          "{\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"openid\":\"" OPENID
                          "\",\"brand_id\":\"" BRAND_ID "\"}");
    require(check(seeded != NULL, "emulator holds the user card"), "add_user_card");
    free(seeded);
    cardbridge_bytes confirmed = {NULL, 0};
    rc = cardbridge_wechatpay_confirm(wp, S(CONFIRM_INPUT(CODE, "")), &confirmed, &err);
    check_ok(rc, err, "confirm succeeded");
    err = NULL;
    const char *confirmed_text = confirmed.data ? (const char *)confirmed.data : "";
    check(strstr(confirmed_text, "\"user_card_state\":\"EFFECTIVE\"") != NULL, "answer shows the card EFFECTIVE");
    check(strstr(confirmed_text, "\"phone_number\":\"" PHONE "\"") != NULL, "answer carries the decrypted phone");
    check(strstr(confirmed_text, "\"undecryptable\":[]") != NULL, "every answer field decrypted");
    long long applied = emu_counter(emu, "wechatpay", "cards_confirmed", NULL);
    check(applied == 1, "emulator applied one confirm (%lld)", applied);
    long long hits = emu_counter(emu, "wechatpay", "confirm_hits", CODE);
    check(hits == 1, "one confirm request sent (%lld)", hits);
    char *card = emu_ok(emu, "GET", "/wechatpay/cards/" CODE, NULL);
    check(card != NULL, "emulator's view of the card");
    check(card != NULL && strstr(card, "\"phone_number\":\"" PHONE "\"") != NULL,
          "WeChat side decrypted the phone the library encrypted");

    cardbridge_bytes repeat = {NULL, 0};
    rc = cardbridge_wechatpay_confirm(wp, S(CONFIRM_INPUT(CODE, "")), &repeat, &err);
    check_ok(rc, err, "second confirm succeeded");
    err = NULL;
    check(repeat.data != NULL && strstr((const char *)repeat.data, "\"user_card_state\":\"EFFECTIVE\"") != NULL,
          "second confirm returns the stored answer");
    hits = emu_counter(emu, "wechatpay", "confirm_hits", CODE);
    check(hits == 1, "second confirm did not reach the emulator (%lld request)", hits);

    /* ---- validation detail ---- */
    cardbridge_bytes unused = {NULL, 0};
    /* Another card: for CODE itself, a differing input is an IDEMPOTENCY_CONFLICT with the stored confirm. */
    rc = cardbridge_wechatpay_confirm(wp, S(CONFIRM_INPUT("3003", ",\"card_color\":\"yellow\"")), &unused, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_VALIDATION, "confirm.card_color", NULL, "confirm with card_color yellow");
    err = NULL;
    check(unused.data == NULL, "no output on failure");
    check(emu_counter(emu, "wechatpay", "confirm_hits_total", NULL) == 1, "the invalid confirm was not sent");

    /* ---- the brand family: a template, then the member leaves ---- */
    cardbridge_bytes template = {NULL, 0};
    rc = cardbridge_wechatpay_create_card_template(
        wp,
        S("{\"out_request_no\":\"T-C\",\"brand_id\":\"" BRAND_ID "\",\"appid\":\"wxea9c30890f48d5ae\","
          "\"card_type\":\"NORMAL\",\"card_title\":\"Gold\",\"card_color\":\"#FFFF00\","
          "\"card_picture_url\":\"https://wxpaylogo.qpic.cn/x/0\",\"code_mode\":\"SYSTEM_ALLOCATE\","
          "\"code_type\":\"QR_CODE\",\"benefits\":\"b\",\"notify_url\":\"https://merchant.example/cb\","
          "\"valid_date_information\":{\"type\":\"PERMANENT\"}}"),
        &template, &err);
    check_ok(rc, err, "card template created");
    check(template.data && strstr((const char *)template.data, "\"state\":\"CARD_EFFECTIVE\"") != NULL,
          "template answer shows CARD_EFFECTIVE");
    rc = cardbridge_wechatpay_invalidate_user_card(
        wp, S("{\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"brand_id\":\"" BRAND_ID
              "\",\"openid\":\"" OPENID "\"}"),
        &unused, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_VALIDATION, "invalidateUserCard.invalid_reason", NULL,
                "invalidation without a reason");
    err = NULL;
    cardbridge_bytes left = {NULL, 0};
    rc = cardbridge_wechatpay_invalidate_user_card(
        wp, S("{\"user_card_code\":\"" CODE "\",\"card_id\":\"" CARD_ID "\",\"brand_id\":\"" BRAND_ID
              "\",\"openid\":\"" OPENID "\",\"invalid_reason\":\"member left\"}"),
        &left, &err);
    check_ok(rc, err, "user card invalidated");
    check(left.data && strstr((const char *)left.data, "\"user_card_state\":\"INVALID\"") != NULL,
          "member left: card INVALID");
    /* ---- log events: the flow is there, the personal data is not ---- */
    rc = cardbridge_set_log_callback(CARDBRIDGE_LOG_TRACE, NULL, NULL, &err);
    check_ok(rc, err, "log callback removed");
    err = NULL;
    const char *log_text = sink.text.data ? sink.text.data : "";
    check(strstr(log_text, "cardbridge::callback callback answer") != NULL &&
              strstr(log_text, "\"result\":\"accepted\"") != NULL,
          "the accepted callback was logged");
    check(strstr(log_text, "\"kind\":\"wechatpay.confirm\"") != NULL, "the confirm attempt was logged");
    static const char *const never[] = {PHONE, API_V3_KEY, "Li Lei", "\xe5\xbc\xa0\xe4\xb8\x89" /* the sample's name */,
                                        "PRIVATE KEY"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        check(strstr(log_text, never[i]) == NULL, "no log event contains personal data or keys (%zu)", i);
    }
    check(sink.reentered == sink.count && sink.count > 0,
          "the callback called back into the library each time (%d of %d events)", sink.reentered, sink.count);
    sb_free(&sink.text);

    /* ---- clean up ---- */
    cardbridge_bytes_free(&left);
    cardbridge_bytes_free(&template);
    cardbridge_bytes_free(&repeat);
    free(card);
    cardbridge_bytes_free(&confirmed);
    cardbridge_wechatpay_free(wp);
    emu_stop(&emulator);
    sb_free(&config);
    sb_free(&emu_config);
    free(wechatpay_private);
    free(wechatpay_public);
    free(merchant_private);
    free(merchant_public);
    remove_db(db_path);

    printf("%d checks, %d failed\n", checks_run, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
