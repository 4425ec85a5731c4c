/* Small helpers shared by the C test programs: check reporting, a growable
 * string with a JSON string escaper, file reading and error-object reading,
 * and (from examples/c/emulator_client.h, shared with the C/C++ examples) the
 * `cardbridge emulator` binary with a tiny loopback HTTP client for its
 * control API. Everything is static so each program includes it once, C11
 * only; programs define _POSIX_C_SOURCE 200809L first (sockets, popen). */
#ifndef CARDBRIDGE_TEST_COMMON_H
#define CARDBRIDGE_TEST_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cardbridge.h"
#include "emulator_client.h" /* examples/c: on the include path */

/* ---- checks ------------------------------------------------------------ */

static int checks_failed = 0;
static int checks_run = 0;

/* Prints one line per check: "ok   - what" or "FAIL - what". */
static int check(int ok, const char *fmt, ...) {
    va_list ap;
    checks_run++;
    if (!ok) {
        checks_failed++;
    }
    printf("%s - ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return ok;
}

/* Aborts the program (exit 1) when a setup step fails: later checks would be noise. */
static void require(int ok, const char *what) {
    if (!ok) {
        printf("FAIL - %s (cannot continue)\n", what);
        exit(1);
    }
}

/* ---- growable string ----------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

static void sb_append_n(strbuf *sb, const char *s, size_t n) {
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < sb->len + n + 1) {
            cap *= 2;
        }
        char *grown = realloc(sb->data, cap);
        require(grown != NULL, "realloc");
        sb->data = grown;
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

static void sb_append(strbuf *sb, const char *s) { sb_append_n(sb, s, strlen(s)); }

/* Appends `s` as a quoted JSON string: escapes '"', '\\' and control characters. */
static void sb_append_json_string(strbuf *sb, const char *s) {
    sb_append(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_append(sb, "\\\""); break;
        case '\\': sb_append(sb, "\\\\"); break;
        case '\n': sb_append(sb, "\\n"); break;
        case '\r': sb_append(sb, "\\r"); break;
        case '\t': sb_append(sb, "\\t"); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
                sb_append(sb, esc);
            } else {
                sb_append_n(sb, (const char *)p, 1);
            }
        }
    }
    sb_append(sb, "\"");
}

/* Appends `"key":"<escaped value>"`, preceded by a comma unless first. */
static void sb_member(strbuf *sb, const char *key, const char *value, int first) {
    if (!first) {
        sb_append(sb, ",");
    }
    sb_append_json_string(sb, key);
    sb_append(sb, ":");
    sb_append_json_string(sb, value);
}

static void sb_free(strbuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

/* ---- files and time ------------------------------------------------------ */

/* Reads a whole file as a NUL-terminated string (caller frees), or exits. */
static char *read_file(const char *dir, const char *name) {
    strbuf path = {0};
    sb_append(&path, dir);
    sb_append(&path, name);
    FILE *f = fopen(path.data, "rb");
    if (f == NULL) {
        printf("FAIL - cannot open %s\n", path.data);
        exit(1);
    }
    strbuf text = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        sb_append_n(&text, chunk, n);
    }
    fclose(f);
    sb_free(&path);
    require(text.data != NULL, "file is empty");
    return text.data;
}

/* Current Unix time in milliseconds (C11 timespec_get). */
static int64_t now_unix_ms(void) {
    struct timespec ts;
    require(timespec_get(&ts, TIME_UTC) == TIME_UTC, "timespec_get");
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- error objects ------------------------------------------------------- */

typedef cardbridge_result (*error_text_fn)(const cardbridge_error *, char *, size_t, size_t *);

/* Reads one text accessor with the size query, then the copy (caller frees). */
static char *error_text(error_text_fn accessor, const cardbridge_error *err) {
    size_t needed = 0;
    if (accessor(err, NULL, 0, &needed) != CARDBRIDGE_RESULT_INSUFFICIENT_SIZE) {
        return NULL;
    }
    char *buf = malloc(needed);
    require(buf != NULL, "malloc");
    size_t written = 0;
    if (accessor(err, buf, needed, &written) != CARDBRIDGE_RESULT_OK || written + 1 != needed) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Prints what a failed call said and frees the error (NULL allowed). */
static void report_error(const char *what, cardbridge_result rc, cardbridge_error *err) {
    char *message = err ? error_text(cardbridge_error_message, err) : NULL;
    printf("     %s: %s: %s\n", what, cardbridge_result_name(rc), message ? message : "(no detail)");
    free(message);
    cardbridge_error_free(err);
}

/* Checks that a call succeeded; on failure prints and frees its error. */
static int check_ok(cardbridge_result rc, cardbridge_error *err, const char *what) {
    if (rc != CARDBRIDGE_RESULT_OK) {
        check(0, "%s", what);
        report_error(what, rc, err);
        return 0;
    }
    return check(err == NULL, "%s", what);
}

/* Checks that a call failed with `expected` and that the error names `field`
 * (and `limit`, when not NULL); frees the error. */
static int check_error(cardbridge_result rc, cardbridge_error *err, cardbridge_result expected,
                       const char *field, const char *limit, const char *what) {
    char *got_field = err ? error_text(cardbridge_error_field, err) : NULL;
    char *got_limit = err ? error_text(cardbridge_error_limit, err) : NULL;
    int ok = rc == expected && err != NULL && cardbridge_error_code(err) == expected &&
             got_field != NULL && strcmp(got_field, field) == 0 &&
             (limit == NULL || (got_limit != NULL && strcmp(got_limit, limit) == 0));
    check(ok, "%s -> %s, field \"%s\"%s%s%s", what, cardbridge_result_name(rc),
          got_field ? got_field : "?", limit ? ", limit \"" : "", limit ? (got_limit ? got_limit : "?") : "",
          limit ? "\"" : "");
    free(got_field);
    free(got_limit);
    cardbridge_error_free(err);
    return ok;
}

#endif /* CARDBRIDGE_TEST_COMMON_H */
