/* End-to-end Alipay+ flow through the C ABI, as a C host would write it:
 * the `cardbridge emulator` binary (started and driven through its control API
 * by examples/c/emulator_client.h), SQLite store, integration from JSON config, a signed
 * notifyCardRegistration handled with begin -> decide -> finish, duplicate
 * replay, a tampered request, issueCard built from the registration and sent
 * through a fault, validation detail, NULL parameters, and every object freed.
 * A log callback collects every event; the events are searched for the
 * personal data of the registration and for key material, and the counters
 * (cardbridge_alipayplus_metrics) are read back.
 *
 * Usage: alipayplus_flow <keys dir with trailing '/'> [sqlite path]
 * ($CARDBRIDGE_BIN: the cardbridge binary, else `cardbridge` on PATH)
 * Prints one line per check; exits 0 only if every check passed.
 * Built and run (also under valgrind) by tests/c_programs.rs. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, unlink, close, popen, sockets */

#include <unistd.h>

#include "common.h"

#define CLIENT_ID "2022TEST_CLIENT"
#define NOTIFY "/v2/pds/memberships/notifyCardRegistration"
#define REQUEST_TIME "2026-11-23T10:00:00.000+00:00"
#define REQUEST_ID "C-REG-1"
#define REGISTER_DATE "2026-11-23T18:00:00+08:00"
#define CARD_FIELDS                                                                                \
    "[{\"fieldCode\":\"POINT\",\"fieldValue\":\"120\"},"                                           \
    "{\"fieldCode\":\"BALANCE\",\"fieldValue\":{\"value\":100,\"currency\":\"SGD\"}}]"

#define S(lit) lit, sizeof(lit) - 1 /* a string literal as pointer + length */

/* Every log event, one line each: "LEVEL target message fields_json". */
typedef struct {
    strbuf text;
    int count;
    int warnings;
} log_sink;

static void on_log(void *user_data, const cardbridge_log_event *event) {
    log_sink *sink = user_data;
    static const char *levels[] = {"?", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    sb_append(&sink->text, levels[event->level <= 5 ? event->level : 0]);
    sb_append(&sink->text, " ");
    sb_append_n(&sink->text, event->target, event->target_len);
    sb_append(&sink->text, " ");
    sb_append_n(&sink->text, event->message, event->message_len);
    for (size_t i = 0; i < event->fields_len; i++) {
        sb_append(&sink->text, " ");
        sb_append_n(&sink->text, event->fields[i].key, event->fields[i].key_len);
        sb_append(&sink->text, "=");
        sb_append_n(&sink->text, event->fields[i].value, event->fields[i].value_len);
    }
    sb_append(&sink->text, " ");
    sb_append_n(&sink->text, event->fields_json, event->fields_json_len);
    sb_append(&sink->text, "\n");
    sink->count++;
    if (event->level == CARDBRIDGE_LOG_WARN) sink->warnings++;
}

/* What cardbridge_alipayplus_begin produced. */
typedef struct {
    cardbridge_http_response *response;
    cardbridge_alipayplus_call *call;
} began;

/* Feeds an emulator-minted request to the integration as a host's HTTP
 * server hands over what it received. */
static began handle(const cardbridge_alipayplus *ap, const emu_request *req) {
    began out = {NULL, NULL};
    cardbridge_error *err = NULL;
    cardbridge_result rc = cardbridge_alipayplus_begin(
        ap, req->method, strlen(req->method), req->target, strlen(req->target), req->headers, req->header_count,
        (const uint8_t *)req->body, req->body_len, now_unix_ms(), &out.response, &out.call, &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        report_error("begin", rc, err);
        require(0, "cardbridge_alipayplus_begin");
    }
    require((out.response == NULL) != (out.call == NULL), "begin sets exactly one of response / call");
    return out;
}

/* A notifyCardRegistration for REQUEST_ID signed by the platform (the
 * emulator's sample body), spoiled as `tamper` says (`none`, `bad-signature`). */
static emu_request mint(const emu_process *emu, const char *tamper) {
    emu_request req;
    require(emu_mint(emu, "/alipayplus/mint",
                     strcmp(tamper, "none") == 0
                         ? "{\"request_id\":\"" REQUEST_ID "\",\"request_time\":\"" REQUEST_TIME "\"}"
                         : "{\"request_id\":\"" REQUEST_ID "\",\"request_time\":\"" REQUEST_TIME
                           "\",\"tamper\":\"bad-signature\"}",
                     &req),
            "the emulator mints a signed registration");
    return req;
}

/* Whether the emulator (the platform) finds `answer` correctly signed by the
 * merchant for `req`: every header and the exact body go to its control API. */
static int answer_verifies(const emu_process *emu, const emu_request *req, const cardbridge_http_response *answer) {
    cardbridge_error *err = NULL;
    strbuf doc = {0};
    sb_append(&doc, "{");
    sb_member(&doc, "target", req->target, 1);
    sb_append(&doc, ",\"headers\":[");
    for (size_t i = 0; i < cardbridge_http_response_header_count(answer); i++) {
        cardbridge_header h;
        require(cardbridge_http_response_header(answer, i, &h, &err) == CARDBRIDGE_RESULT_OK, "response header");
        strbuf name = {0}, value = {0};
        sb_append_n(&name, h.name, h.name_len);
        sb_append_n(&value, h.value, h.value_len);
        sb_append(&doc, i ? ",[" : "[");
        sb_append_json_string(&doc, name.data);
        sb_append(&doc, ",");
        sb_append_json_string(&doc, value.data);
        sb_append(&doc, "]");
        sb_free(&name);
        sb_free(&value);
    }
    const uint8_t *body = NULL;
    size_t len = 0;
    require(cardbridge_http_response_body(answer, &body, &len, &err) == CARDBRIDGE_RESULT_OK, "response body");
    strbuf text = {0};
    sb_append_n(&text, (const char *)body, len);
    sb_append(&doc, "],\"body\":");
    sb_append_json_string(&doc, text.data);
    sb_append(&doc, "}");
    char *verdict = emu_ok(emu, "POST", "/alipayplus/verify", doc.data);
    int valid = verdict != NULL && strstr(verdict, "\"valid\":true") != NULL;
    free(verdict);
    sb_free(&text);
    sb_free(&doc);
    return valid;
}

/* A view of a response body. */
static const uint8_t *response_body(const cardbridge_http_response *resp, size_t *len) {
    const uint8_t *body = NULL;
    cardbridge_error *err = NULL;
    require(cardbridge_http_response_body(resp, &body, len, &err) == CARDBRIDGE_RESULT_OK, "response body");
    return body;
}

/* Whether `needle` occurs in the `len` bytes at `hay` (bodies are not NUL-terminated). */
static int contains(const uint8_t *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i + n <= len; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
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
    char *platform_private = read_file(keys, "test_platform_private.pem");
    char *platform_public = read_file(keys, "test_platform_public.pem");
    char *merchant_private = read_file(keys, "test_merchant_private.pem");
    char *merchant_public_pem = read_file(keys, "test_merchant_public.pem");

    char db_path[256];
    if (argc >= 3) {
        snprintf(db_path, sizeof db_path, "%s", argv[2]);
    } else {
        snprintf(db_path, sizeof db_path, "/tmp/cardbridge-c-flow-XXXXXX");
        int fd = mkstemp(db_path);
        require(fd >= 0, "mkstemp");
        close(fd);
    }

    const char *version = cardbridge_version();
    check(version != NULL && strncmp(version, "cardbridge/", 11) == 0, "version is %s", version);

    cardbridge_error *err = NULL;
    cardbridge_result rc;

    /* ---- log callback: set first, so every event of the flow is seen ---- */
    log_sink sink = {{0}, 0, 0};
    rc = cardbridge_set_log_callback(9, on_log, &sink, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_INVALID_PARAMETER, "min_level", NULL, "log level 9 refused");
    err = NULL;
    rc = cardbridge_set_log_callback(CARDBRIDGE_LOG_INFO, on_log, &sink, &err);
    check_ok(rc, err, "log callback set at INFO");
    err = NULL;

    /* ---- emulator (the platform, with these keys) ---- */
    strbuf emu_config = {0};
    sb_append(&emu_config, "{");
    sb_member(&emu_config, "platform_private_key", platform_private, 1);
    sb_member(&emu_config, "merchant_public_key", merchant_public_pem, 0);
    sb_member(&emu_config, "client_id", CLIENT_ID, 0);
    sb_append(&emu_config, "}");
    emu_process emulator;
    require(check(emu_start(&emulator, emu_config.data), "emulator started"), "emulator");
    check(strncmp(emulator.url, "http://127.0.0.1:", 17) == 0, "emulator URL is %s", emulator.url);

    /* ---- store and integration ---- */
    const cardbridge_store *store = NULL;
    rc = cardbridge_store_open_sqlite(db_path, strlen(db_path), &store, &err);
    require(check_ok(rc, err, "SQLite store opened"), "store");
    err = NULL;

    strbuf config = {0};
    sb_append(&config, "{");
    sb_member(&config, "client_id", CLIENT_ID, 1);
    sb_member(&config, "merchant_private_key", merchant_private, 0);
    sb_member(&config, "platform_public_key", platform_public, 0);
    sb_member(&config, "base_url", emulator.url, 0);
    /* Generous timeouts: under valgrind everything runs ~50x slower. */
    sb_append(&config, ",\"connect_timeout_ms\":10000,\"read_timeout_ms\":60000,"
                       "\"retry\":{\"max_attempts\":4,\"base_delay_ms\":10,\"max_delay_ms\":50,"
                       "\"deadline_ms\":300000}}");
    const cardbridge_alipayplus *ap = NULL;
    rc = cardbridge_alipayplus_new(config.data, config.len, store, &ap, &err);
    require(check_ok(rc, err, "integration created from JSON config"), "integration");
    err = NULL;
    /* The integration keeps its own reference to the store. */
    cardbridge_store_free(store);

    /* ---- notifyCardRegistration: begin -> decide -> finish ---- */
    emu_request req = mint(&emulator, "none");
    check(strcmp(req.target, NOTIFY) == 0, "minted for %s", req.target);
    strbuf registration = {0};
    sb_append_n(&registration, req.body, req.body_len);
    began b = handle(ap, &req);
    check(b.call != NULL && b.response == NULL, "signed registration reaches the host as a call");
    require(b.call != NULL, "call");
    check(cardbridge_alipayplus_call_api(b.call) == CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION,
          "call API is notifyCardRegistration (%u)", cardbridge_alipayplus_call_api(b.call));
    const uint8_t *request_json = NULL;
    size_t request_json_len = 0;
    rc = cardbridge_alipayplus_call_request(b.call, &request_json, &request_json_len, &err);
    check_ok(rc, err, "call request JSON readable");
    err = NULL;
    check(request_json_len == registration.len && memcmp(request_json, registration.data, registration.len) == 0,
          "call request JSON is the body as sent (%zu bytes)", request_json_len);

    /* Build the issueCard from the registration while the view is alive. */
    cardbridge_bytes issue_request = {NULL, 0};
    rc = cardbridge_alipayplus_build_issue_card((const char *)request_json, request_json_len, S("M-000123"),
                                                S(REGISTER_DATE), S(CARD_FIELDS), NULL, 0, &issue_request, &err);
    check_ok(rc, err, "issueCard request built from the registration");
    err = NULL;
    check(issue_request.data != NULL && strstr((const char *)issue_request.data, "\"requestId\":\"" REQUEST_ID "\"") != NULL,
          "issueCard reuses the registration's requestId");

    cardbridge_http_response *answer = NULL;
    rc = cardbridge_alipayplus_finish(ap, b.call, S("{}"), now_unix_ms(), &answer, &err);
    check_ok(rc, err, "finish with {} (success)");
    err = NULL;
    require(answer != NULL, "answer");
    size_t answer_len = 0;
    const uint8_t *answer_body = response_body(answer, &answer_len);
    check(cardbridge_http_response_status(answer) == 200, "answer status 200");
    check(contains(answer_body, answer_len, "\"resultCode\":\"SUCCESS\""), "answer says SUCCESS");
    check(answer_verifies(&emulator, &req, answer), "answer signature verifies with the merchant public key");

    cardbridge_http_response *again = NULL;
    rc = cardbridge_alipayplus_finish(ap, b.call, S("{}"), now_unix_ms(), &again, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_ALREADY_USED, "call", NULL, "second finish");
    err = NULL;
    check(again == NULL, "second finish wrote no response");
    cardbridge_alipayplus_call_free(b.call);

    /* ---- duplicate: answered from the store, byte-identical ---- */
    emu_request dup = mint(&emulator, "none");
    began d = handle(ap, &dup);
    check(d.response != NULL && d.call == NULL, "duplicate is answered without the host");
    if (d.response != NULL) {
        size_t dup_len = 0;
        const uint8_t *dup_body = response_body(d.response, &dup_len);
        check(dup_len == answer_len && memcmp(dup_body, answer_body, answer_len) == 0,
              "duplicate answer is byte-identical (%zu bytes)", dup_len);
        check(answer_verifies(&emulator, &dup, d.response), "duplicate answer is signed");
    }
    cardbridge_http_response_free(d.response);
    cardbridge_alipayplus_call_free(d.call);
    emu_request_free(&dup);

    /* ---- tampered: ACCESS_DENIED, no call ---- */
    emu_request bad = mint(&emulator, "bad-signature");
    began t = handle(ap, &bad);
    check(t.response != NULL && t.call == NULL, "tampered request is answered without the host");
    if (t.response != NULL) {
        size_t len = 0;
        const uint8_t *body = response_body(t.response, &len);
        check(contains(body, len, "\"resultCode\":\"ACCESS_DENIED\""), "tampered request gets ACCESS_DENIED");
    }
    cardbridge_http_response_free(t.response);
    cardbridge_alipayplus_call_free(t.call);
    emu_request_free(&bad);

    /* ---- issueCard through a fault ---- */
    char *queued = emu_ok(&emulator, "POST", "/alipayplus/faults", "{\"fault\":\"unknown\"}");
    check(queued != NULL, "fault \"unknown\" queued");
    free(queued);
    cardbridge_bytes card = {NULL, 0};
    rc = cardbridge_alipayplus_issue_card(ap, (const char *)issue_request.data, issue_request.len, &card, &err);
    check_ok(rc, err, "issueCard succeeded after the U answer");
    err = NULL;
    check(card.data != NULL && strstr((const char *)card.data, "\"cardNo\"") != NULL, "answer has cardNo: %s",
          card.data ? (const char *)card.data : "(none)");
    long long hits = emu_counter(&emulator, "alipayplus", "hits", REQUEST_ID);
    check(hits == 2, "emulator saw the request twice (%lld)", hits);
    check(emu_counter(&emulator, "alipayplus", "cards_issued", NULL) == 1, "one card issued");

    /* ---- counters and log events of the flow so far ---- */
    cardbridge_bytes metrics = {NULL, 0};
    rc = cardbridge_alipayplus_metrics(ap, &metrics, &err);
    check_ok(rc, err, "metrics read");
    err = NULL;
    require(metrics.data != NULL, "metrics");
    const char *m = (const char *)metrics.data;
    check(strstr(m, "\"notifyCardRegistration\":{\"F\":1,\"S\":1,\"replayed\":1}") != NULL,
          "metrics count the inbound answers: %s", m);
    check(strstr(m, "\"alipayplus.issueCard\":{\"ambiguous\":1,\"succeeded\":1}") != NULL,
          "metrics count the issueCard attempts");
    check(strstr(m, "\"retries\":1,\"duplicates_replayed\":1,") != NULL, "metrics count the retry and the duplicate");
    check(strstr(m, "\"pending_entries\":0}") != NULL, "no entry pending");
    cardbridge_bytes_free(&metrics);
    rc = cardbridge_alipayplus_metrics(NULL, &metrics, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_NULL_PARAMETER, "client", NULL, "metrics of NULL");
    err = NULL;

    const char *log_text = sink.text.data ? sink.text.data : "";
    check(strstr(log_text, "INFO cardbridge::inbound inbound answer api=notifyCardRegistration request_id=" REQUEST_ID
                           " result=S") != NULL,
          "the answer was logged with its requestId");
    check(strstr(log_text, "result_code=ACCESS_DENIED") != NULL, "the tampered request was logged");
    check(strstr(log_text, "WARN cardbridge::outbox retry scheduled kind=alipayplus.issueCard") != NULL,
          "the retry was logged");
    check(strstr(log_text, "outcome=succeeded http_status=200 latency_ms=") != NULL,
          "the successful attempt was logged with status and latency");
    check(strstr(log_text, "\"attempt\":2") != NULL, "fields also arrive as typed JSON");
    /* Personal data of the registration and key material never appear. */
    static const char *const never[] = {"John Doe", "+6588120000", "email@example.com", "2002-07-25",
                                        "1236450862137570000", "BEGIN", "PRIVATE KEY"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        check(strstr(log_text, never[i]) == NULL, "no log event contains \"%s\"", never[i]);
    }
    for (const char *line = merchant_private; *line; line++) {
        if (line == merchant_private || line[-1] == '\n') {
            if (strncmp(line, "-----", 5) != 0 && strlen(line) >= 24) {
                char chunk[25];
                memcpy(chunk, line, 24);
                chunk[24] = 0;
                if (strstr(log_text, chunk) != NULL) check(0, "a log event contains merchant key material");
            }
        }
    }
    /* answer, duplicate, refusal, ambiguous attempt, retry, success; 3 of them warnings */
    /* + the refusal's signature diagnosis (a warning) */
    check(sink.count == 7 && sink.warnings == 4, "%d events seen, %d warnings", sink.count, sink.warnings);

    /* Removed: nothing more arrives. */
    rc = cardbridge_set_log_callback(CARDBRIDGE_LOG_TRACE, NULL, NULL, &err);
    check_ok(rc, err, "log callback removed");
    err = NULL;
    int seen = sink.count;

    /* ---- per-call options: a cancelled call and a 1 ms deadline stop after one attempt ---- */
    {
        cardbridge_bytes issue2 = {NULL, 0}, card2 = {NULL, 0};
        emu_request reg2;
        require(emu_mint(&emulator, "/alipayplus/mint",
                         "{\"request_id\":\"C-OPT-1\",\"request_time\":\"" REQUEST_TIME "\"}", &reg2),
                "second registration");
        rc = cardbridge_alipayplus_build_issue_card(reg2.body, reg2.body_len, S("M-000124"), S(REGISTER_DATE),
                                                    S(CARD_FIELDS), NULL, 0, &issue2, &err);
        check_ok(rc, err, "second issueCard built");
        err = NULL;
        const cardbridge_cancel_token *token = NULL;
        rc = cardbridge_cancel_token_new(&token, &err);
        check_ok(rc, err, "cancel token created");
        err = NULL;
        check(!cardbridge_cancel_token_is_cancelled(token), "a new token is not set");
        cardbridge_cancel_token_cancel(token);
        check(cardbridge_cancel_token_is_cancelled(token), "the token is set");
        cardbridge_call_options options = {0, token};
        char *queued2 = emu_ok(&emulator, "POST", "/alipayplus/faults", "{\"fault\":\"unknown\"}");
        check(queued2 != NULL, "fault queued");
        free(queued2);
        rc = cardbridge_alipayplus_issue_card_with_options(ap, (const char *)issue2.data, issue2.len, &options, &card2,
                                                           &err);
        check(rc == CARDBRIDGE_RESULT_REMOTE_UNKNOWN && card2.data == NULL, "cancelled issueCard -> %s",
              cardbridge_result_name(rc));
        check(cardbridge_error_attempts(err) == 1 && emu_counter(&emulator, "alipayplus", "hits", "C-OPT-1") == 1,
              "cancelled after one attempt");
        char request_id[16];
        size_t request_id_len = 0;
        rc = cardbridge_error_request_id(err, request_id, sizeof request_id, &request_id_len);
        check(rc == CARDBRIDGE_RESULT_OK && strcmp(request_id, "C-OPT-1") == 0, "the error names requestId %s",
              request_id);
        cardbridge_error_free(err);
        err = NULL;

        cardbridge_call_options short_deadline = {1, NULL};
        for (int i = 0; i < 4; i++) {
            char *queued500 = emu_ok(&emulator, "POST", "/alipayplus/faults", "{\"fault\":\"http_status\",\"status\":500}");
            check(queued500 != NULL, "HTTP 500 queued");
            free(queued500);
        }
        rc = cardbridge_alipayplus_issue_card_with_options(ap, (const char *)issue2.data, issue2.len, &short_deadline,
                                                           &card2, &err);
        check(rc == CARDBRIDGE_RESULT_REMOTE_UNKNOWN, "1 ms deadline -> %s", cardbridge_result_name(rc));
        long long hits2 = emu_counter(&emulator, "alipayplus", "hits", "C-OPT-1");
        check(hits2 == 2, "one more attempt only (%lld hits)", hits2);
        cardbridge_error_free(err);
        err = NULL;
        /* NULL options: the configured budget; it outlasts the 3 faults left. */
        rc = cardbridge_alipayplus_issue_card_with_options(ap, (const char *)issue2.data, issue2.len, NULL, &card2, &err);
        check_ok(rc, err, "issueCard completed with the default options");
        err = NULL;
        cardbridge_cancel_token_free(token);
        cardbridge_cancel_token_free(NULL);
        cardbridge_bytes_free(&card2);
        cardbridge_bytes_free(&issue2);
        emu_request_free(&reg2);
    }

    /* ---- validation detail ---- */
    static const char invalid[] =
        "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"requestId\":\"C-BAD-1\","
        "\"customerId\":\"1\",\"externalCustomerId\":\"M-1\",\"registerDate\":\"yesterday\",\"cardFields\":[]}";
    rc = cardbridge_alipayplus_issue_card(ap, S(invalid), &card, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_VALIDATION, "issueCard.registerDate", NULL, "issueCard with a bad date");
    err = NULL;
    cardbridge_bytes unused = {NULL, 0};
    char long_id[65];
    memset(long_id, 'x', sizeof long_id);
    rc = cardbridge_alipayplus_build_issue_card(registration.data, registration.len, long_id,
                                                sizeof long_id, S(REGISTER_DATE), S(CARD_FIELDS), NULL, 0, &unused, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_VALIDATION, "issueCard.externalCustomerId", "64",
                "build_issue_card with a 65-character externalCustomerId");
    err = NULL;
    /* The optional members, validated when the request is built. */
    cardbridge_bytes with_options = {NULL, 0};
    rc = cardbridge_alipayplus_build_issue_card(
        registration.data, registration.len, S("M-000123"), S(REGISTER_DATE), S(CARD_FIELDS),
        S("{\"externalCardNo\":\"CARD-0001\",\"expireDate\":\"2027-11-23T00:00:00+08:00\",\"extendInfo\":\"{}\"}"),
        &with_options, &err);
    check_ok(rc, err, "build_issue_card with externalCardNo, expireDate and extendInfo");
    err = NULL;
    check(with_options.data != NULL && strstr((const char *)with_options.data, "\"externalCardNo\":\"CARD-0001\"") &&
              strstr((const char *)with_options.data, "\"expireDate\":\"2027-11-23T00:00:00+08:00\"") &&
              strstr((const char *)with_options.data, "\"extendInfo\":\"{}\""),
          "the optional members are in the built request");
    cardbridge_bytes_free(&with_options);
    strbuf long_options = {0};
    sb_append(&long_options, "{\"extendInfo\":\"");
    for (int k = 0; k < 2049; k++) sb_append(&long_options, "x");
    sb_append(&long_options, "\"}");
    rc = cardbridge_alipayplus_build_issue_card(registration.data, registration.len, S("M-1"), S(REGISTER_DATE),
                                                S(CARD_FIELDS), long_options.data, long_options.len, &unused, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_VALIDATION, "issueCard.extendInfo", "2048",
                "build_issue_card with a 2049-character extendInfo");
    err = NULL;
    sb_free(&long_options);
    rc = cardbridge_alipayplus_build_issue_card(registration.data, registration.len, S("M-1"), S(REGISTER_DATE),
                                                S(CARD_FIELDS), S("{\"cardNo\":\"1\"}"), &unused, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_VALIDATION, "issueCard.cardNo", NULL,
                "build_issue_card with an option that is not an optional member");
    err = NULL;
    check(unused.data == NULL, "no output on failure");
    int status = 0;
    char *refused = emu_call(&emulator, "POST", "/alipayplus/faults", "{\"fault\":\"meltdown\"}", &status);
    check(status == 400 && refused != NULL && strstr(refused, "\"field\":\"fault\"") != NULL,
          "unknown emulator fault refused naming the field (%d)", status);
    free(refused);

    /* ---- NULL parameters ---- */
    const cardbridge_alipayplus *none = NULL;
    rc = cardbridge_alipayplus_new(NULL, 5, NULL, &none, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_NULL_PARAMETER, "config_json", NULL, "new with NULL config");
    err = NULL;
    rc = cardbridge_alipayplus_issue_card(NULL, S("{}"), &unused, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_NULL_PARAMETER, "alipayplus", NULL, "issue_card with NULL integration");
    err = NULL;
    cardbridge_http_response *r = NULL;
    rc = cardbridge_alipayplus_begin(ap, S("POST"), S(NOTIFY), NULL, 0, NULL, 0, now_unix_ms(), &r, NULL, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_NULL_PARAMETER, "call_out", NULL, "begin with NULL call_out");
    err = NULL;
    rc = cardbridge_alipayplus_finish(ap, NULL, S("{}"), 0, &r, &err);
    check_error(rc, err, CARDBRIDGE_RESULT_NULL_PARAMETER, "call", NULL, "finish with NULL call");
    err = NULL;
    rc = cardbridge_store_open_sqlite(NULL, 3, &store, NULL);
    check(rc == CARDBRIDGE_RESULT_NULL_PARAMETER, "store_open_sqlite with NULL path and NULL error_out -> %s",
          cardbridge_result_name(rc));
    check(none == NULL && r == NULL, "outputs untouched on failure");
    check(cardbridge_alipayplus_call_api(NULL) == 0, "call_api(NULL) is 0");
    cardbridge_alipayplus_free(NULL);
    cardbridge_alipayplus_call_free(NULL);
    cardbridge_store_free(NULL);
    cardbridge_http_response_free(NULL);
    cardbridge_bytes_free(NULL);

    check(sink.count == seen, "no event after the callback was removed");
    sb_free(&sink.text);

    /* ---- clean up ---- */
    size_t purged = 99;
    rc = cardbridge_alipayplus_purge_expired(ap, now_unix_ms(), &purged, &err);
    check_ok(rc, err, "purge_expired ran");
    err = NULL;
    check(purged == 0, "nothing old enough to purge (%zu)", purged);

    cardbridge_bytes_free(&card);
    cardbridge_bytes_free(&card); /* second free is a no-op */
    cardbridge_bytes_free(&issue_request);
    sb_free(&registration);
    cardbridge_http_response_free(answer);
    emu_request_free(&req);
    cardbridge_alipayplus_free(ap);
    emu_stop(&emulator);
    sb_free(&config);
    sb_free(&emu_config);
    free(platform_private);
    free(platform_public);
    free(merchant_private);
    free(merchant_public_pem);
    remove_db(db_path);

    printf("%d checks, %d failed\n", checks_run, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
