/* emulator_client.h - test support for the C/C++ examples and the C tests, not
 * part of cardbridge: starts the `cardbridge emulator` binary (both platforms
 * on one loopback port) and speaks its control API (JSON under
 * /__cardbridge/) with a tiny HTTP/1.1 client over POSIX sockets.
 *
 * The binary is $CARDBRIDGE_BIN, else `cardbridge` on PATH. It is started as
 * `cardbridge --json emulator --port 0 [--config FILE]`; its first output line
 * (JSON) carries the URL. emu_stop() asks it to shut down and waits for it.
 * Answers are read with mini_json.h. Compiles as C11 (with _POSIX_C_SOURCE
 * 200809L defined before any include) and as C++17. */
#ifndef CARDBRIDGE_EXAMPLE_EMULATOR_CLIENT_H
#define CARDBRIDGE_EXAMPLE_EMULATOR_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cardbridge.h"
#include "mini_json.h"

/* A running emulator. */
typedef struct emu_process {
    FILE *out;            /* the binary's stdout (popen) */
    char config[64];      /* the temporary --config file, or "" */
    char url[64];         /* http://127.0.0.1:PORT */
    unsigned short port;
} emu_process;

/* A growable text buffer (internal). */
typedef struct emu_text {
    char *p;
    size_t n, cap;
} emu_text;

static inline int emu_add_n(emu_text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        while (cap < t->n + n + 1) cap *= 2;
        char *grown = (char *)realloc(t->p, cap);
        if (grown == NULL) return 0;
        t->p = grown;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
    return 1;
}

static inline int emu_add(emu_text *t, const char *s) { return emu_add_n(t, s, strlen(s)); }

/* Appends `s` as a JSON string literal. */
static inline int emu_add_json(emu_text *t, const char *s) {
    int ok = emu_add(t, "\"");
    for (const unsigned char *c = (const unsigned char *)s; ok && *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\', esc[1] = (char)*c, esc[2] = '\0';
        } else if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*c);
        } else {
            esc[0] = (char)*c, esc[1] = '\0';
        }
        ok = emu_add(t, esc);
    }
    return ok && emu_add(t, "\"");
}

static inline void emu_stop(emu_process *e);

/* Emulators still running at exit() (e.g. a program giving up half-way) are
 * stopped then, so no emulator process outlives its program. */
#define EMU_MAX_RUNNING 4
static emu_process *emu_running[EMU_MAX_RUNNING];

static inline void emu_stop_all(void) {
    for (int i = 0; i < EMU_MAX_RUNNING; i++) {
        if (emu_running[i] != NULL) emu_stop(emu_running[i]);
    }
}

static inline void emu_track(emu_process *e, int add) {
    static int registered = 0;
    if (add && !registered) {
        registered = atexit(emu_stop_all) == 0;
    }
    for (int i = 0; i < EMU_MAX_RUNNING; i++) {
        if (add ? emu_running[i] == NULL : emu_running[i] == e) {
            emu_running[i] = add ? e : NULL;
            return;
        }
    }
}

/* Starts the emulator; `config_json` (NULL: the test keys and IDs) is written
 * to a temporary file and passed as --config. Returns 1, or 0 with a message
 * on stderr. */
static inline int emu_start(emu_process *e, const char *config_json) {
    memset(e, 0, sizeof *e);
    const char *bin = getenv("CARDBRIDGE_BIN");
    if (bin != NULL && strchr(bin, '\'') != NULL) {
        fprintf(stderr, "emulator: CARDBRIDGE_BIN must not contain a single quote\n");
        return 0;
    }
    if (config_json != NULL) {
        snprintf(e->config, sizeof e->config, "/tmp/cardbridge-emulator-XXXXXX");
        int fd = mkstemp(e->config);
        if (fd < 0) {
            fprintf(stderr, "emulator: cannot create a configuration file\n");
            e->config[0] = '\0';
            return 0;
        }
        size_t len = strlen(config_json);
        int written = write(fd, config_json, len) == (ssize_t)len;
        close(fd);
        if (!written) {
            fprintf(stderr, "emulator: cannot write the configuration file\n");
            return 0;
        }
    }
    emu_text cmd = {NULL, 0, 0};
    /* Single-quoted for /bin/sh; the paths must not contain a single quote. */
    emu_add(&cmd, "'");
    emu_add(&cmd, bin != NULL && bin[0] != '\0' ? bin : "cardbridge");
    emu_add(&cmd, "' --json emulator --port 0");
    if (e->config[0] != '\0') {
        emu_add(&cmd, " --config '");
        emu_add(&cmd, e->config);
        emu_add(&cmd, "'");
    }
    if (cmd.p == NULL) {
        if (e->config[0] != '\0') unlink(e->config);
        return 0;
    }
    fflush(NULL);
    e->out = popen(cmd.p, "r");
    free(cmd.p);
    char line[4096] = "";
    mj_span doc, url;
    char *text = NULL;
    /* The first line: the start document, or (--json) the error that stopped it. */
    int got_line = e->out != NULL && fgets(line, sizeof line, e->out) != NULL;
    if (!got_line || !mj_parse(line, strlen(line), &doc) || !mj_member(doc, "url", &url) ||
        (text = mj_string(url)) == NULL || strncmp(text, "http://127.0.0.1:", 17) != 0 ||
        strlen(text) >= sizeof e->url) {
        fprintf(stderr, "emulator: `%s emulator` did not start (set CARDBRIDGE_BIN to the cardbridge binary): %s",
                bin != NULL ? bin : "cardbridge", got_line ? line : "no output\n");
        free(text);
        if (e->out != NULL) pclose(e->out);
        e->out = NULL;
        if (e->config[0] != '\0') unlink(e->config);
        return 0;
    }
    snprintf(e->url, sizeof e->url, "%s", text);
    e->port = (unsigned short)atoi(text + 17);
    free(text);
    emu_track(e, 1);
    return 1;
}

/* One control API call: `method` `/__cardbridge<path>` with a JSON `body`
 * (NULL: none). Returns the answer body (caller frees; NUL-terminated) and
 * its HTTP status in *status, or NULL if the emulator cannot be reached. */
static inline char *emu_call(const emu_process *e, const char *method, const char *path, const char *body,
                             int *status) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(e->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return NULL;
    }
    char head[512];
    size_t body_len = body != NULL ? strlen(body) : 0;
    int head_len = snprintf(head, sizeof head,
                            "%s /__cardbridge%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            method, path, (unsigned)e->port, body_len);
    emu_text request = {NULL, 0, 0}, answer = {NULL, 0, 0};
    int ok = head_len > 0 && (size_t)head_len < sizeof head && emu_add_n(&request, head, (size_t)head_len) &&
             (body == NULL || emu_add_n(&request, body, body_len));
    for (size_t sent = 0; ok && sent < request.n;) {
        ssize_t n = send(fd, request.p + sent, request.n - sent, 0);
        ok = n > 0;
        sent += ok ? (size_t)n : 0;
    }
    char chunk[4096];
    ssize_t got;
    while (ok && (got = recv(fd, chunk, sizeof chunk, 0)) > 0) {
        ok = emu_add_n(&answer, chunk, (size_t)got);
    }
    close(fd);
    free(request.p);
    const char *start = answer.p != NULL ? strstr(answer.p, "\r\n\r\n") : NULL;
    if (!ok || start == NULL || strncmp(answer.p, "HTTP/1.1 ", 9) != 0) {
        free(answer.p);
        return NULL;
    }
    *status = atoi(answer.p + 9);
    start += 4;
    size_t len = answer.n - (size_t)(start - answer.p);
    memmove(answer.p, start, len);
    answer.p[len] = '\0';
    return answer.p;
}

/* A control call expected to answer 200: the body (caller frees), or NULL
 * with the refusal on stderr. */
static inline char *emu_ok(const emu_process *e, const char *method, const char *path, const char *body) {
    int status = 0;
    char *answer = emu_call(e, method, path, body, &status);
    if (answer == NULL || status != 200) {
        fprintf(stderr, "emulator: %s %s -> %d %s\n", method, path, status, answer ? answer : "(no answer)");
        free(answer);
        return NULL;
    }
    return answer;
}

/* A number from GET /counters: counters[platform][name], or, with `key`,
 * counters[platform][name][key] (0 when absent); -1 on failure. */
static inline long long emu_counter(const emu_process *e, const char *platform, const char *name, const char *key) {
    char *answer = emu_ok(e, "GET", "/counters", NULL);
    mj_span doc, p, v, k;
    long long n = -1;
    if (answer != NULL && mj_parse(answer, strlen(answer), &doc) && mj_member(doc, platform, &p) &&
        mj_member(p, name, &v)) {
        if (key == NULL) {
            mj_integer(v, &n);
        } else if (mj_member(v, key, &k)) {
            mj_integer(k, &n);
        } else {
            n = 0;
        }
    }
    free(answer);
    return n;
}

/* A signed platform -> merchant request minted by the emulator. `headers`
 * views point into `names` and `values`. */
typedef struct emu_request {
    char *method;
    char *target;
    char *body;
    size_t body_len;
    size_t header_count;
    char **names;
    char **values;
    cardbridge_header *headers;
} emu_request;

static inline void emu_request_free(emu_request *r) {
    for (size_t i = 0; i < r->header_count; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    free(r->headers);
    free(r->method);
    free(r->target);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* POST `path` (/alipayplus/mint or /wechatpay/mint) with `body_json`; reads
 * the minted request into *r. Returns 1, or 0 with a message on stderr. */
static inline int emu_mint(const emu_process *e, const char *path, const char *body_json, emu_request *r) {
    memset(r, 0, sizeof *r);
    char *answer = emu_ok(e, "POST", path, body_json);
    mj_span doc, req, v, headers, h, part;
    int ok = answer != NULL && mj_parse(answer, strlen(answer), &doc) && mj_member(doc, "request", &req) &&
             mj_member(req, "method", &v) && (r->method = mj_string(v)) != NULL && mj_member(req, "target", &v) &&
             (r->target = mj_string(v)) != NULL && mj_member(req, "body", &v) &&
             (r->body = mj_string_n(v, &r->body_len)) != NULL && mj_member(req, "headers", &headers);
    while (ok && mj_element(headers, r->header_count, &h)) {
        r->header_count++;
    }
    if (ok) {
        size_t n = r->header_count ? r->header_count : 1;
        r->names = (char **)calloc(n, sizeof *r->names);
        r->values = (char **)calloc(n, sizeof *r->values);
        r->headers = (cardbridge_header *)calloc(n, sizeof *r->headers);
        ok = r->names != NULL && r->values != NULL && r->headers != NULL;
    }
    for (size_t i = 0; ok && i < r->header_count; i++) {
        ok = mj_element(headers, i, &h) && mj_element(h, 0, &part) && (r->names[i] = mj_string(part)) != NULL &&
             mj_element(h, 1, &part) && (r->values[i] = mj_string(part)) != NULL;
        if (ok) {
            r->headers[i].name = r->names[i];
            r->headers[i].name_len = strlen(r->names[i]);
            r->headers[i].value = r->values[i];
            r->headers[i].value_len = strlen(r->values[i]);
        }
    }
    free(answer);
    if (!ok) {
        fprintf(stderr, "emulator: unexpected answer to POST %s\n", path);
        emu_request_free(r);
    }
    return ok;
}

/* Stops the emulator (POST /__cardbridge/shutdown), waits for it and removes
 * the configuration file. */
static inline void emu_stop(emu_process *e) {
    emu_track(e, 0);
    if (e->out != NULL) {
        int status = 0;
        free(emu_call(e, "POST", "/shutdown", NULL, &status));
        pclose(e->out);
        e->out = NULL;
    }
    if (e->config[0] != '\0') {
        unlink(e->config);
        e->config[0] = '\0';
    }
}

#endif /* CARDBRIDGE_EXAMPLE_EMULATOR_CLIENT_H */
