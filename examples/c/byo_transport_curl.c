/* byo_transport_curl.c - issueCard over the host's own HTTP stack (libcurl),
 * with cardbridge doing everything else: the durable outbox entry, signing,
 * verifying the answer, the retry rules and the final answer.
 *
 * The loop a host writes:
 *   prepare  -> cardbridge records the request and returns it signed
 *   while a request is returned:
 *       wait cardbridge_prepared_wait_ms, send it with libcurl exactly as
 *       given (method, URL, every header, the body), hand the raw answer
 *       (status, headers, body) or the transport failure to complete
 *   -> the verified answer, or an error (F refusal, outcome unknown)
 *
 * The platform is played by test support outside the library: the
 * `cardbridge emulator` binary, started by emulator_client.h; a fault makes
 * the first answer an HTTP 500 so the retry shows. In production base_url
 * points at the real platform and libcurl verifies its TLS certificate.
 *
 * Build from the repository root (after `cargo build`; needs libcurl4-openssl-dev):
 *   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/c/byo_transport_curl.c \
 *       -Ltarget/debug -lcardbridge -lcurl -Wl,-rpath,"$PWD/target/debug" -o target/byo_transport_curl
 * Run (CARDBRIDGE_BIN: the cardbridge binary; default `cardbridge` on PATH):
 *   CARDBRIDGE_BIN=target/debug/cardbridge target/byo_transport_curl [--keys DIR/]
 * Exits 0 when the card was issued. */
#define _POSIX_C_SOURCE 200809L /* emulator_client.h: popen, mkstemp, sockets; nanosleep */

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cardbridge.h"
#include "emulator_client.h"

#define CLIENT_ID "2022TEST_CLIENT"
#define S(lit) lit, sizeof(lit) - 1 /* a string literal as pointer + length */
#define MAX_HEADERS 64

static char *read_text_file(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    emu_text t = {NULL, 0, 0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) emu_add_n(&t, chunk, n);
    fclose(f);
    return t.p;
}

/* The raw answer libcurl collected. */
typedef struct {
    emu_text body;
    char *header_lines[MAX_HEADERS]; /* "Name: value" without CRLF, owned */
    size_t header_count;
} collected;

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    collected *c = user;
    return emu_add_n(&c->body, data, size * n) ? size * n : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *user) {
    collected *c = user;
    size_t len = size * n;
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n')) len--;
    if (strncmp(data, "HTTP/", 5) == 0) { /* a new status line: start over */
        for (size_t i = 0; i < c->header_count; i++) free(c->header_lines[i]);
        c->header_count = 0;
    } else if (len > 0 && memchr(data, ':', len) != NULL && c->header_count < MAX_HEADERS) {
        char *line = malloc(len + 1);
        if (line == NULL) return 0;
        memcpy(line, data, len);
        line[len] = '\0';
        c->header_lines[c->header_count++] = line;
    }
    return size * n;
}

static void collected_free(collected *c) {
    free(c->body.p);
    for (size_t i = 0; i < c->header_count; i++) free(c->header_lines[i]);
    memset(c, 0, sizeof *c);
}

/* A copy of one borrowed text view (method or URL) as a C string. */
static char *copy_view(const char *data, size_t len) {
    char *s = malloc(len + 1);
    if (s != NULL) {
        memcpy(s, data, len);
        s[len] = '\0';
    }
    return s;
}

/* Sends `p` with libcurl and completes it: returns the next request (or
 * NULL) and stores the final answer in *answer_out. */
static cardbridge_result send_and_complete(CURL *curl, const cardbridge_alipayplus *ap, cardbridge_prepared *p,
                                           cardbridge_bytes *answer_out, cardbridge_prepared **next_out,
                                           cardbridge_error **err) {
    const char *method_view, *url_view;
    size_t method_len, url_len, body_len;
    const uint8_t *body;
    cardbridge_prepared_method(p, &method_view, &method_len, NULL);
    cardbridge_prepared_url(p, &url_view, &url_len, NULL);
    cardbridge_prepared_body(p, &body, &body_len, NULL);
    char *method = copy_view(method_view, method_len);
    char *url = copy_view(url_view, url_len);

    /* Every header, unchanged: they carry the signature. */
    struct curl_slist *headers = curl_slist_append(NULL, "Expect:"); /* no 100-continue */
    for (size_t i = 0; i < cardbridge_prepared_header_count(p); i++) {
        cardbridge_header h;
        if (cardbridge_prepared_header(p, i, &h, NULL) != CARDBRIDGE_RESULT_OK) continue;
        emu_text line = {NULL, 0, 0};
        emu_add_n(&line, h.name, h.name_len);
        emu_add(&line, ": ");
        emu_add_n(&line, h.value, h.value_len);
        headers = curl_slist_append(headers, line.p);
        free(line.p);
    }
    collected got;
    memset(&got, 0, sizeof got);
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &got);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L); /* within the lease cardbridge holds for us */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode code = curl_easy_perform(curl);

    uint32_t reply = CARDBRIDGE_REPLY_ANSWERED;
    long status = 0;
    if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_SSL_CONNECT_ERROR) {
        reply = CARDBRIDGE_REPLY_NOT_SENT; /* it never left: a plain retry is safe */
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        reply = CARDBRIDGE_REPLY_TIMED_OUT; /* it may have been applied */
    } else if (code != CURLE_OK) {
        reply = CARDBRIDGE_REPLY_NO_ANSWER;
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    cardbridge_header views[MAX_HEADERS];
    for (size_t i = 0; i < got.header_count; i++) {
        char *line = got.header_lines[i];
        char *colon = strchr(line, ':');
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        views[i] = (cardbridge_header){line, (size_t)(colon - line), value, strlen(value)};
    }
    printf("  %s %s -> %s %ld\n", method, url,
           reply == CARDBRIDGE_REPLY_ANSWERED ? "HTTP" : "transport failure", status);
    /* complete consumes `p` on every path. */
    cardbridge_result rc = cardbridge_alipayplus_issue_card_complete(
        ap, p, reply, (uint16_t)status, views, got.header_count, (const uint8_t *)got.body.p, got.body.n, answer_out,
        next_out, err);
    collected_free(&got);
    curl_slist_free_all(headers);
    free(method);
    free(url);
    return rc;
}

int main(int argc, char **argv) {
    const char *keys = "tests/fixtures/keys/";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
            keys = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--keys DIR/]\n", argv[0]);
            return 2;
        }
    }
    char *merchant_private = read_text_file(keys, "test_merchant_private.pem");
    char *merchant_public = read_text_file(keys, "test_merchant_public.pem");
    char *platform_private = read_text_file(keys, "test_platform_private.pem");
    char *platform_public = read_text_file(keys, "test_platform_public.pem");
    if (!merchant_private || !merchant_public || !platform_private || !platform_public) {
        fprintf(stderr, "cannot read the test keys under %s\n", keys);
        return 1;
    }
    int exit_code = 1;
    emu_text emu_config = {NULL, 0, 0};
    emu_add(&emu_config, "{\"platform_private_key\":");
    emu_add_json(&emu_config, platform_private);
    emu_add(&emu_config, ",\"merchant_public_key\":");
    emu_add_json(&emu_config, merchant_public);
    emu_add(&emu_config, ",\"client_id\":\"" CLIENT_ID "\"}");
    emu_process emulator;
    if (!emu_start(&emulator, emu_config.p)) return 1;

    emu_text config = {NULL, 0, 0};
    emu_add(&config, "{\"client_id\":\"" CLIENT_ID "\",\"merchant_private_key\":");
    emu_add_json(&config, merchant_private);
    emu_add(&config, ",\"platform_public_key\":");
    emu_add_json(&config, platform_public);
    emu_add(&config, ",\"base_url\":");
    emu_add_json(&config, emulator.url);
    emu_add(&config, ",\"retry\":{\"base_delay_ms\":100}}");

    const cardbridge_store *store = NULL;
    const cardbridge_alipayplus *ap = NULL;
    cardbridge_error *err = NULL;
    cardbridge_result rc = cardbridge_store_new_memory(&store, &err);
    if (rc == CARDBRIDGE_RESULT_OK) rc = cardbridge_alipayplus_new(config.p, config.n, store, &ap, &err);
    cardbridge_store_free(store);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();

    /* The first answer will be an HTTP 500 (nothing issued): cardbridge asks for a retry. */
    free(emu_ok(&emulator, "POST", "/alipayplus/faults", "{\"fault\":\"http_status\",\"status\":500}"));

    static const char request[] =
        "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"requestId\":\"CURL-REQ-1\","
        "\"customerId\":\"210911290000\",\"externalCustomerId\":\"M-000123\","
        "\"registerDate\":\"2019-11-27T19:07:41+08:00\","
        "\"cardFields\":[{\"fieldCode\":\"POINT\",\"fieldValue\":\"120\"}]}";
    cardbridge_bytes answer = {NULL, 0};
    cardbridge_prepared *p = NULL;
    int sent = 0;
    if (rc == CARDBRIDGE_RESULT_OK && curl != NULL) {
        rc = cardbridge_alipayplus_issue_card_prepare(ap, S(request), &answer, &p, &err);
    }
    while (rc == CARDBRIDGE_RESULT_OK && p != NULL) {
        uint64_t wait = cardbridge_prepared_wait_ms(p);
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        cardbridge_prepared *next = NULL;
        rc = send_and_complete(curl, ap, p, &answer, &next, &err);
        sent++;
        p = rc == CARDBRIDGE_RESULT_OK ? next : NULL;
    }
    if (rc == CARDBRIDGE_RESULT_OK) {
        printf("issueCard over libcurl: %d request(s) sent; verified answer %s\n", sent, (const char *)answer.data);
        exit_code = strstr((const char *)answer.data, "\"cardNo\"") != NULL ? 0 : 1;
    } else {
        char message[512] = "";
        size_t n = 0;
        cardbridge_error_message(err, message, sizeof message, &n);
        printf("issueCard failed: %s: %s\n", cardbridge_result_name(rc), message);
    }
    cardbridge_error_free(err);
    cardbridge_bytes_free(&answer);
    if (curl != NULL) curl_easy_cleanup(curl);
    curl_global_cleanup();
    cardbridge_alipayplus_free(ap);
    emu_stop(&emulator);
    free(emu_config.p);
    free(config.p);
    free(merchant_private);
    free(merchant_public);
    free(platform_private);
    free(platform_public);
    return exit_code;
}
