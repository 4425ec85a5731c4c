/* The cross-language conformance suite, C runner. Reads
 * tests/fixtures/conformance/alipayplus_validate.json, wechatpay_validate.json and
 * alipayplus_inbound.json and checks every case through the C ABI with the
 * semantics of the Rust runner tests/conformance.rs (same comparisons, byte
 * for byte); the Python and C# runners do the same. Then the independent
 * verification matrix (tests/fixtures/matrix, made by generate.py without
 * cardbridge): matrix/alipayplus_inbound.json, matrix/wechatpay_callbacks.json
 * and matrix/limits_alipayplus.json, with the comparisons of tests/matrix.rs.
 *
 * Usage: conformance <fixtures dir with trailing '/'>   (e.g. tests/fixtures/)
 * Prints one line per case ("ok   - ..." or "FAIL - ...: why") and a closing
 * "N passed, N failed"; exits 0 only when nothing failed.
 * Needs cJSON (Debian: libcjson-dev); link with -lcjson.
 *
 * Mapping of the Rust runner's Option comparisons: the C ABI reports "no
 * field" / "no limit" as empty text, so an absent or null expected field or
 * limit must read back as "". */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cardbridge.h"

/* The Rust runner's sanity bound on the validate fixture. */
#define MIN_VALIDATE_CASES 15

static int passed = 0;
static int failed = 0;

/* Why the current case failed (empty while it passes); the first reason wins. */
static char why[2048];

static void fail_because(const char *fmt, ...) {
    if (why[0] != '\0') {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
}

/* Prints the verdict of one case and resets the reason. */
static void finish_case(const char *suite, const char *name) {
    if (why[0] == '\0') {
        passed++;
        printf("ok   - %s: %s\n", suite, name);
    } else {
        failed++;
        printf("FAIL - %s: %s: %s\n", suite, name, why);
    }
    fflush(stdout);
    why[0] = '\0';
}

/* A whole file as NUL-terminated text (caller frees), or NULL. */
static char *read_file(const char *dir, const char *name) {
    size_t dir_len = strlen(dir), name_len = strlen(name);
    char *path = malloc(dir_len + name_len + 1);
    if (path == NULL) {
        return NULL;
    }
    memcpy(path, dir, dir_len);
    memcpy(path + dir_len, name, name_len + 1);
    FILE *f = fopen(path, "rb");
    free(path);
    if (f == NULL) {
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *grown = realloc(text, cap);
            if (grown == NULL) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (text == NULL) {
        text = calloc(1, 1);
    } else {
        text[len] = '\0';
    }
    return text;
}

/* Parses a fixture file; exits (status 1) when it is missing or not JSON. */
static cJSON *load_fixture(const char *fixtures, const char *name) {
    char *text = read_file(fixtures, name);
    if (text == NULL) {
        printf("FAIL - cannot read %s%s\n", fixtures, name);
        printf("%d passed, %d failed\n", passed, failed + 1);
        exit(1);
    }
    /* cJSON strings are NUL-terminated, so a \u0000 in the fixtures would be cut short. */
    if (strstr(text, "\\u0000") != NULL) {
        printf("FAIL - %s contains \\u0000, which this runner cannot carry\n", name);
        printf("%d passed, %d failed\n", passed, failed + 1);
        exit(1);
    }
    cJSON *doc = cJSON_Parse(text);
    free(text);
    if (doc == NULL) {
        printf("FAIL - %s is not JSON (near: %.40s)\n", name, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "?");
        printf("%d passed, %d failed\n", passed, failed + 1);
        exit(1);
    }
    return doc;
}

/* Member `key` of `obj` when it is a string (the Rust runner's text()), else
 * NULL and the case fails naming the member. */
static const char *text(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(item)) {
        fail_because("fixture: \"%s\" is not a string", key);
        return NULL;
    }
    return item->valuestring;
}

/* Member `key` when it is a string, NULL otherwise (serde_json's as_str()). */
static const char *optional_text(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* Whether `item` is an integral JSON number that doubles carry exactly
 * (|n| < 2^53, as every fixture integer); writes it to `*out`. */
static int as_integer(const cJSON *item, long long *out) {
    if (!cJSON_IsNumber(item) || item->valuedouble < -9007199254740991.0 || item->valuedouble > 9007199254740991.0 ||
        item->valuedouble != (double)(long long)item->valuedouble) {
        return 0;
    }
    *out = (long long)item->valuedouble;
    return 1;
}

typedef cardbridge_result (*error_text_fn)(const cardbridge_error *, char *, size_t, size_t *);

/* One text accessor of an error (caller frees), or NULL if unreadable. */
static char *error_text(error_text_fn accessor, const cardbridge_error *err) {
    size_t needed = 0, written = 0;
    if (accessor(err, NULL, 0, &needed) != CARDBRIDGE_RESULT_INSUFFICIENT_SIZE) {
        return NULL;
    }
    char *buf = malloc(needed);
    if (buf != NULL && accessor(err, buf, needed, &written) == CARDBRIDGE_RESULT_OK && written + 1 == needed) {
        return buf;
    }
    free(buf);
    return NULL;
}

/* Fails the case with what a failed call said; frees the error. */
static void fail_with_error(const char *what, cardbridge_result rc, cardbridge_error *err) {
    char *message = err ? error_text(cardbridge_error_message, err) : NULL;
    fail_because("%s failed: %s: %s", what, cardbridge_result_name(rc), message ? message : "(no message)");
    free(message);
    cardbridge_error_free(err);
}

/* Whether `len` bytes at `got` are exactly the text `expected`. */
static int same_bytes(const void *got, size_t len, const char *expected) {
    return len == strlen(expected) && (len == 0 || memcmp(got, expected, len) == 0);
}

/* Compares an optional expected text with an error accessor's text ("" = none). */
static void compare_optional(const char *what, const char *expected, const char *got) {
    const char *want = expected ? expected : "";
    if (got == NULL || strcmp(got, want) != 0) {
        fail_because("%s: expected \"%s\"%s, got \"%s\"", what, want, expected ? "" : " (none)", got ? got : "?");
    }
}

/* ---- alipayplus_validate.json ------------------------------------------- */

/* Compares one validate outcome with `expect`. `matrix`: the limit cases of
 * tests/fixtures/matrix, which carry no expected output or message, and
 * compare the limit only when given. */
static void compare_outcome(cardbridge_result rc, cardbridge_bytes *out, cardbridge_error *err, const cJSON *expect,
                            int matrix) {
    if (rc == CARDBRIDGE_RESULT_OK) {
        const char *output = NULL;
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(expect, "ok"))) {
            fail_because("expected an error, got success: %s", (const char *)out->data);
        } else if (!matrix && (output = text(expect, "output")) != NULL && !same_bytes(out->data, out->len, output)) {
            fail_because("output differs:\n       expected %s\n       got      %s", output, (const char *)out->data);
        }
        cardbridge_bytes_free(out);
    } else {
        char *got_message = err ? error_text(cardbridge_error_message, err) : NULL;
        char *got_field = err ? error_text(cardbridge_error_field, err) : NULL;
        char *got_limit = err ? error_text(cardbridge_error_limit, err) : NULL;
        const char *got_result = cardbridge_result_name(err ? cardbridge_error_code(err) : rc);
        const char *result = NULL, *want_message = NULL;
        if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(expect, "ok"))) {
            fail_because("unexpected error %s: %s", got_result, got_message ? got_message : "?");
        } else if (err == NULL || cardbridge_error_code(err) != rc) {
            fail_because("returned %s without a matching error object", cardbridge_result_name(rc));
        } else if ((result = text(expect, "result")) != NULL && strcmp(got_result, result) != 0) {
            fail_because("result: expected %s, got %s", result, got_result);
        }
        compare_optional("field", optional_text(expect, "field"), got_field);
        if (!matrix || cJSON_GetObjectItemCaseSensitive(expect, "limit") != NULL) {
            compare_optional("limit", optional_text(expect, "limit"), got_limit);
        }
        if (!matrix && (want_message = text(expect, "message")) != NULL &&
            (got_message == NULL || strcmp(got_message, want_message) != 0)) {
            fail_because("message: expected \"%s\", got \"%s\"", want_message, got_message ? got_message : "?");
        }
        free(got_message);
        free(got_field);
        free(got_limit);
        cardbridge_error_free(err);
    }
}

static void validate_case(const cJSON *c, int matrix) {
    const char *name = optional_text(c, "name");
    const char *message = text(c, "message");
    const char *direction = text(c, "direction");
    const char *input = text(c, "input");
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(c, "expect");
    if (message != NULL && direction != NULL && input != NULL) {
        uint32_t dir = strcmp(direction, "inbound") == 0 ? CARDBRIDGE_DIRECTION_INBOUND : CARDBRIDGE_DIRECTION_OUTBOUND;
        cardbridge_bytes out = {NULL, 0};
        cardbridge_error *err = NULL;
        cardbridge_result rc =
            cardbridge_alipayplus_validate(message, strlen(message), input, strlen(input), dir, &out, &err);
        compare_outcome(rc, &out, err, expect, matrix);
    }
    finish_case(matrix ? "matrix limits" : "validate", name ? name : "(unnamed)");
}

/* ---- wechatpay_validate.json -------------------------------------------- */

static void wechat_validate_case(const cJSON *c) {
    const char *name = optional_text(c, "name");
    const char *operation = text(c, "operation");
    const char *input = text(c, "input");
    const cJSON *options = cJSON_GetObjectItemCaseSensitive(c, "options");
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(c, "expect");
    if (operation != NULL && input != NULL) {
        char *options_json = options ? cJSON_PrintUnformatted(options) : NULL;
        cardbridge_bytes out = {NULL, 0};
        cardbridge_error *err = NULL;
        cardbridge_result rc = cardbridge_wechatpay_validate(operation, strlen(operation), input, strlen(input),
                                                             options_json, options_json ? strlen(options_json) : 0,
                                                             &out, &err);
        compare_outcome(rc, &out, err, expect, 0);
        cJSON_free(options_json);
    }
    finish_case("wechatpay validate", name ? name : "(unnamed)");
}

/* ---- alipayplus_inbound.json -------------------------------------------- */

/* A PEM file under `fixtures` + `subdir` (caller frees), or NULL with the case failed. */
static char *pem_file(const char *fixtures, const char *subdir, const char *file) {
    size_t n = strlen(fixtures) + strlen(subdir) + 1;
    char *dir = malloc(n);
    if (dir == NULL) {
        return NULL;
    }
    snprintf(dir, n, "%s%s", fixtures, subdir);
    char *pem = read_file(dir, file);
    free(dir);
    if (pem == NULL) {
        fail_because("cannot read %s%s", subdir, file);
    }
    return pem;
}

/* A key file's PEM text (caller frees), or NULL with the case failed. */
static char *key_file(const char *fixtures, const cJSON *cfg, const char *member) {
    const char *file = text(cfg, member);
    return file == NULL ? NULL : pem_file(fixtures, "keys/", file);
}

/* The integration for a case's "config", on a fresh memory store; NULL with the case failed. */
static const cardbridge_alipayplus *integration(const char *fixtures, const cJSON *cfg) {
    const char *client_id = text(cfg, "client_id");
    char *merchant_private = key_file(fixtures, cfg, "merchant_private_key_file");
    char *platform_public = key_file(fixtures, cfg, "platform_public_key_file");
    const cardbridge_alipayplus *ap = NULL;
    if (client_id != NULL && merchant_private != NULL && platform_public != NULL) {
        cJSON *config = cJSON_CreateObject();
        cJSON_AddStringToObject(config, "client_id", client_id);
        cJSON_AddStringToObject(config, "merchant_private_key", merchant_private);
        cJSON_AddStringToObject(config, "platform_public_key", platform_public);
        /* serde_json's as_i64().unwrap_or(0) */
        long long offset = 0;
        if (!as_integer(cJSON_GetObjectItemCaseSensitive(cfg, "time_offset_minutes"), &offset)) {
            offset = 0;
        }
        cJSON_AddNumberToObject(config, "time_offset_minutes", (double)offset);
        /* The matrix's extras: further platform keys by keyVersion, the skew window. */
        const cJSON *versions = cJSON_GetObjectItemCaseSensitive(cfg, "platform_public_key_files_by_version");
        if (cJSON_IsObject(versions)) {
            cJSON *by_version = cJSON_AddObjectToObject(config, "platform_public_keys_by_version");
            const cJSON *v = NULL;
            cJSON_ArrayForEach(v, versions) {
                char *pem = cJSON_IsString(v) ? pem_file(fixtures, "keys/", v->valuestring) : NULL;
                if (pem != NULL) {
                    cJSON_AddStringToObject(by_version, v->string, pem);
                }
                free(pem);
            }
        }
        long long window = 0;
        if (as_integer(cJSON_GetObjectItemCaseSensitive(cfg, "max_clock_skew_ms"), &window)) {
            cJSON_AddNumberToObject(config, "max_clock_skew_ms", (double)window);
        }
        char *config_json = cJSON_PrintUnformatted(config);
        cJSON_Delete(config);
        const cardbridge_store *store = NULL;
        cardbridge_error *err = NULL;
        cardbridge_result rc = config_json ? cardbridge_store_new_memory(&store, &err) : CARDBRIDGE_RESULT_INTERNAL;
        if (rc == CARDBRIDGE_RESULT_OK) {
            rc = cardbridge_alipayplus_new(config_json, strlen(config_json), store, &ap, &err);
        }
        if (rc != CARDBRIDGE_RESULT_OK) {
            fail_with_error("configuring the integration", rc, err);
        }
        cardbridge_store_free(store); /* the integration keeps its own reference */
        cJSON_free(config_json);
    }
    free(merchant_private);
    free(platform_public);
    return ap;
}

/* The request's headers as borrowed views of the fixture strings; NULL with
 * the case failed (or for an empty list, with *count 0). */
static cardbridge_header *request_headers(const cJSON *list, size_t *count) {
    *count = 0;
    if (!cJSON_IsArray(list)) {
        fail_because("fixture: request.headers is not an array");
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(list);
    cardbridge_header *headers = calloc(n ? n : 1, sizeof *headers);
    if (headers == NULL) {
        fail_because("out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *pair = cJSON_GetArrayItem(list, (int)i);
        const cJSON *name = cJSON_GetArrayItem(pair, 0), *value = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsString(name) || !cJSON_IsString(value)) {
            fail_because("fixture: request.headers[%zu] is not a pair of strings", i);
            free(headers);
            return NULL;
        }
        headers[i].name = name->valuestring;
        headers[i].name_len = strlen(name->valuestring);
        headers[i].value = value->valuestring;
        headers[i].value_len = strlen(value->valuestring);
    }
    *count = n;
    return headers;
}

/* Compares status, headers (in order) and body with the case's "expect". */
static void compare_response(const cardbridge_http_response *response, const cJSON *expect) {
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(expect, "status");
    unsigned got_status = cardbridge_http_response_status(response);
    if (!cJSON_IsNumber(status) || status->valuedouble != (double)got_status) {
        fail_because("status: expected %g, got %u", cJSON_IsNumber(status) ? status->valuedouble : -1.0, got_status);
    }
    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(expect, "headers");
    size_t got_count = cardbridge_http_response_header_count(response);
    if (headers == NULL) {
        /* no expected headers (the WeChat Pay callback matrix): not compared */
    } else if (!cJSON_IsArray(headers) || (size_t)cJSON_GetArraySize(headers) != got_count) {
        fail_because("headers: expected %d, got %zu", cJSON_IsArray(headers) ? cJSON_GetArraySize(headers) : -1,
                     got_count);
    } else {
        for (size_t i = 0; i < got_count; i++) {
            const cJSON *pair = cJSON_GetArrayItem(headers, (int)i);
            const cJSON *name = cJSON_GetArrayItem(pair, 0), *value = cJSON_GetArrayItem(pair, 1);
            cardbridge_header h = {NULL, 0, NULL, 0};
            cardbridge_error *err = NULL;
            cardbridge_result rc = cardbridge_http_response_header(response, i, &h, &err);
            if (rc != CARDBRIDGE_RESULT_OK) {
                fail_with_error("cardbridge_http_response_header", rc, err);
            } else if (!cJSON_IsString(name) || !cJSON_IsString(value)) {
                fail_because("fixture: expect.headers[%zu] is not a pair of strings", i);
            } else if (!same_bytes(h.name, h.name_len, name->valuestring) ||
                       !same_bytes(h.value, h.value_len, value->valuestring)) {
                fail_because("header %zu: expected %s: %s\n       got %.*s: %.*s", i, name->valuestring,
                             value->valuestring, (int)h.name_len, h.name, (int)h.value_len, h.value);
            }
        }
    }
    const uint8_t *body = NULL;
    size_t body_len = 0;
    cardbridge_error *err = NULL;
    cardbridge_result rc = cardbridge_http_response_body(response, &body, &body_len, &err);
    const char *want_body = text(expect, "body");
    if (rc != CARDBRIDGE_RESULT_OK) {
        fail_with_error("cardbridge_http_response_body", rc, err);
    } else if (want_body != NULL && !same_bytes(body, body_len, want_body)) {
        fail_because("body:\n       expected %s\n       got      %.*s", want_body, (int)body_len, (const char *)body);
    }
}

static void inbound_case(const char *fixtures, const cJSON *c, const char *suite) {
    const char *name = optional_text(c, "name");
    const cJSON *request = cJSON_GetObjectItemCaseSensitive(c, "request");
    const cJSON *decision = cJSON_GetObjectItemCaseSensitive(c, "decision");
    const cardbridge_alipayplus *ap = integration(fixtures, cJSON_GetObjectItemCaseSensitive(c, "config"));
    const char *method = text(request, "method");
    const char *target = text(request, "target");
    const char *body = text(request, "body");
    size_t header_count = 0;
    cardbridge_header *headers = request_headers(cJSON_GetObjectItemCaseSensitive(request, "headers"), &header_count);
    long long now_ms = 0;
    if (!as_integer(cJSON_GetObjectItemCaseSensitive(c, "now_ms"), &now_ms)) {
        fail_because("fixture: now_ms is not an integer");
    }
    if (ap != NULL && method != NULL && target != NULL && body != NULL && headers != NULL && why[0] == '\0') {
        cardbridge_http_response *response = NULL;
        cardbridge_alipayplus_call *call = NULL;
        cardbridge_error *err = NULL;
        cardbridge_result rc = cardbridge_alipayplus_begin(ap, method, strlen(method), target, strlen(target),
                                                           headers, header_count, (const uint8_t *)body,
                                                           strlen(body), (int64_t)now_ms, &response, &call, &err);
        if (rc != CARDBRIDGE_RESULT_OK) {
            fail_with_error("cardbridge_alipayplus_begin", rc, err);
        } else if (response != NULL) {
            if (decision != NULL && !cJSON_IsNull(decision)) {
                fail_because("the host should have been asked");
            }
            const cJSON *host_called = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "expect"), "host_called");
            if (cJSON_IsTrue(host_called)) {
                fail_because("host_called: expected true, the library answered by itself");
            }
        } else if (!cJSON_IsString(decision)) {
            fail_because("host asked unexpectedly");
        } else {
            rc = cardbridge_alipayplus_finish(ap, call, decision->valuestring, strlen(decision->valuestring),
                                              (int64_t)now_ms, &response, &err);
            if (rc != CARDBRIDGE_RESULT_OK) {
                fail_with_error("cardbridge_alipayplus_finish", rc, err);
            }
        }
        if (response != NULL) {
            compare_response(response, cJSON_GetObjectItemCaseSensitive(c, "expect"));
        }
        cardbridge_http_response_free(response);
        cardbridge_alipayplus_call_free(call);
    }
    free(headers);
    cardbridge_alipayplus_free(ap);
    finish_case(suite, name ? name : "(unnamed)");
}

/* ---- matrix/wechatpay_callbacks.json ------------------------------------ */

/* A WeChat Pay integration for a matrix case's "config"; NULL with the case failed. */
static const cardbridge_wechatpay *wechat_integration(const char *fixtures, const cJSON *cfg) {
    const char *mchid = text(cfg, "mchid"), *serial = text(cfg, "merchant_serial_no");
    const char *api_v3 = text(cfg, "api_v3_key"), *key_id = text(cfg, "wechatpay_public_key_id");
    const char *merchant_file = text(cfg, "merchant_private_key_file");
    const char *wechat_file = text(cfg, "wechatpay_public_key_file");
    const cJSON *cert_files = cJSON_GetObjectItemCaseSensitive(cfg, "platform_certificate_files");
    if (mchid == NULL || serial == NULL || api_v3 == NULL || key_id == NULL || merchant_file == NULL ||
        wechat_file == NULL || !cJSON_IsArray(cert_files)) {
        fail_because("fixture: incomplete WeChat Pay config");
        return NULL;
    }
    char *merchant = pem_file(fixtures, "", merchant_file);
    char *wechat = pem_file(fixtures, "", wechat_file);
    cJSON *config = cJSON_CreateObject();
    cJSON_AddStringToObject(config, "mchid", mchid);
    cJSON_AddStringToObject(config, "merchant_serial_no", serial);
    cJSON_AddStringToObject(config, "merchant_private_key", merchant ? merchant : "");
    cJSON_AddStringToObject(config, "api_v3_key", api_v3);
    cJSON_AddStringToObject(config, "wechatpay_public_key_id", key_id);
    cJSON_AddStringToObject(config, "wechatpay_public_key", wechat ? wechat : "");
    cJSON *certs = cJSON_AddArrayToObject(config, "platform_certificates");
    const cJSON *f = NULL;
    cJSON_ArrayForEach(f, cert_files) {
        char *pem = cJSON_IsString(f) ? pem_file(fixtures, "", f->valuestring) : NULL;
        cJSON_AddItemToArray(certs, cJSON_CreateString(pem ? pem : ""));
        free(pem);
    }
    free(merchant);
    free(wechat);
    char *config_json = cJSON_PrintUnformatted(config);
    cJSON_Delete(config);
    const cardbridge_wechatpay *wx = NULL;
    if (why[0] == '\0' && config_json != NULL) {
        const cardbridge_store *store = NULL;
        cardbridge_error *err = NULL;
        cardbridge_result rc = cardbridge_store_new_memory(&store, &err);
        if (rc == CARDBRIDGE_RESULT_OK) {
            rc = cardbridge_wechatpay_new(config_json, strlen(config_json), store, &wx, &err);
        }
        if (rc != CARDBRIDGE_RESULT_OK) {
            fail_with_error("configuring WeChat Pay", rc, err);
        }
        cardbridge_store_free(store);
    }
    cJSON_free(config_json);
    return wx;
}

/* Compares the event the host saw with expect.event (kind, phone_number, undecryptable). */
static void compare_event(const cardbridge_wechatpay_event *event, const cJSON *want) {
    const uint8_t *json = NULL;
    size_t len = 0;
    cardbridge_error *err = NULL;
    cardbridge_result rc = cardbridge_wechatpay_event_json(event, &json, &len, &err);
    if (rc != CARDBRIDGE_RESULT_OK) {
        fail_with_error("cardbridge_wechatpay_event_json", rc, err);
        return;
    }
    cJSON *got = cJSON_ParseWithLength((const char *)json, len);
    if (got == NULL) {
        fail_because("the event is not JSON");
        return;
    }
    const char *kind = optional_text(got, "kind"), *want_kind = optional_text(want, "kind");
    if (kind == NULL || want_kind == NULL || strcmp(kind, want_kind) != 0) {
        fail_because("event kind: expected %s, got %s", want_kind ? want_kind : "?", kind ? kind : "?");
    }
    const char *want_phone = optional_text(want, "phone_number");
    const char *phone = optional_text(cJSON_GetObjectItemCaseSensitive(got, "resource"), "phone_number");
    if (want_phone != NULL && (phone == NULL || strcmp(phone, want_phone) != 0)) {
        fail_because("decrypted phone_number: expected %s, got %s", want_phone, phone ? phone : "(none)");
    }
    if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(got, "undecryptable"),
                       cJSON_GetObjectItemCaseSensitive(want, "undecryptable"), 1)) {
        fail_because("undecryptable differs");
    }
    cJSON_Delete(got);
}

static void callback_case(const char *fixtures, const cJSON *c) {
    const char *name = optional_text(c, "name");
    const cJSON *request = cJSON_GetObjectItemCaseSensitive(c, "request");
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(c, "expect");
    const cardbridge_wechatpay *wx = wechat_integration(fixtures, cJSON_GetObjectItemCaseSensitive(c, "config"));
    const char *method = text(request, "method"), *target = text(request, "target"), *body = text(request, "body");
    size_t header_count = 0;
    cardbridge_header *headers = request_headers(cJSON_GetObjectItemCaseSensitive(request, "headers"), &header_count);
    long long now = 0;
    if (!as_integer(cJSON_GetObjectItemCaseSensitive(c, "now"), &now)) {
        fail_because("fixture: now is not an integer");
    }
    if (wx != NULL && method != NULL && target != NULL && body != NULL && headers != NULL && why[0] == '\0') {
        cardbridge_http_response *response = NULL;
        cardbridge_wechatpay_event *event = NULL;
        cardbridge_error *err = NULL;
        cardbridge_result rc = cardbridge_wechatpay_callback_begin(
            wx, method, strlen(method), target, strlen(target), headers, header_count, (const uint8_t *)body,
            strlen(body), (int64_t)now * 1000, &response, &event, &err);
        int host_called = event != NULL;
        if (rc != CARDBRIDGE_RESULT_OK) {
            fail_with_error("cardbridge_wechatpay_callback_begin", rc, err);
        } else if (event != NULL) {
            const cJSON *want_event = cJSON_GetObjectItemCaseSensitive(expect, "event");
            if (want_event != NULL) {
                compare_event(event, want_event);
            }
            rc = cardbridge_wechatpay_callback_finish(wx, event, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "accept")),
                                                      "", 0, (int64_t)now * 1000, &response, &err);
            if (rc != CARDBRIDGE_RESULT_OK) {
                fail_with_error("cardbridge_wechatpay_callback_finish", rc, err);
            }
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(expect, "host_called")) != host_called) {
            fail_because("host_called: expected %s", host_called ? "false" : "true");
        }
        if (response != NULL) {
            compare_response(response, expect);
        }
        cardbridge_http_response_free(response);
        cardbridge_wechatpay_event_free(event);
    }
    free(headers);
    cardbridge_wechatpay_free(wx);
    finish_case("matrix callbacks", name ? name : "(unnamed)");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <fixtures dir/>\n", argv[0]);
        return 2;
    }
    const char *fixtures = argv[1];
    printf("cardbridge conformance, C runner (%s, cJSON %s)\n", cardbridge_version(), cJSON_Version());

    cJSON *validate = load_fixture(fixtures, "conformance/alipayplus_validate.json");
    if (!cJSON_IsArray(validate) || cJSON_GetArraySize(validate) < MIN_VALIDATE_CASES) {
        failed++;
        printf("FAIL - alipayplus_validate.json holds %d cases, at least %d expected\n",
               cJSON_IsArray(validate) ? cJSON_GetArraySize(validate) : 0, MIN_VALIDATE_CASES);
    }
    const cJSON *c = NULL;
    cJSON_ArrayForEach(c, validate) {
        validate_case(c, 0);
    }
    cJSON_Delete(validate);

    cJSON *wechat_validate = load_fixture(fixtures, "conformance/wechatpay_validate.json");
    if (!cJSON_IsArray(wechat_validate) || cJSON_GetArraySize(wechat_validate) < 90) {
        failed++;
        printf("FAIL - wechatpay_validate.json holds %d cases, at least 90 expected\n",
               cJSON_IsArray(wechat_validate) ? cJSON_GetArraySize(wechat_validate) : 0);
    }
    cJSON_ArrayForEach(c, wechat_validate) {
        wechat_validate_case(c);
    }
    cJSON_Delete(wechat_validate);

    cJSON *inbound = load_fixture(fixtures, "conformance/alipayplus_inbound.json");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(inbound, "cases");
    if (!cJSON_IsArray(cases)) {
        failed++;
        printf("FAIL - alipayplus_inbound.json has no \"cases\" array\n");
    }
    cJSON_ArrayForEach(c, cases) {
        inbound_case(fixtures, c, "inbound");
    }
    cJSON_Delete(inbound);

    /* The independent verification matrix. */
    cJSON *matrix = load_fixture(fixtures, "matrix/alipayplus_inbound.json");
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(matrix, "cases")) {
        inbound_case(fixtures, c, "matrix inbound");
    }
    cJSON_Delete(matrix);
    matrix = load_fixture(fixtures, "matrix/wechatpay_callbacks.json");
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(matrix, "cases")) {
        callback_case(fixtures, c);
    }
    cJSON_Delete(matrix);
    matrix = load_fixture(fixtures, "matrix/limits_alipayplus.json");
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(matrix, "cases")) {
        validate_case(c, 1);
    }
    cJSON_Delete(matrix);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
