/* mini_json.h - a tiny read-only JSON reader for the cardbridge examples.
 *
 * cardbridge hands JSON to the host as bytes (pointer + length); a real CRM
 * reads them with the JSON library it already uses (cJSON, jansson, ...).
 * The examples use this header instead so they build with nothing but a
 * compiler and cardbridge. It checks syntax strictly (RFC 8259), copies
 * nothing until asked, and compiles as C11 and as C++17.
 *
 * A value is a span of the document text; look values up with mj_member /
 * mj_element and read scalars with mj_string / mj_integer / mj_is_true. */
#ifndef CARDBRIDGE_EXAMPLE_MINI_JSON_H
#define CARDBRIDGE_EXAMPLE_MINI_JSON_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The text of one JSON value (no surrounding whitespace). */
typedef struct mj_span {
    const char *p;
    size_t n;
} mj_span;

/* Nesting deeper than this is refused, so hostile input cannot exhaust the stack. */
#define MJ_MAX_DEPTH 64

static inline const char *mj_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static inline int mj_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* End of the string starting at the quote `p`, or NULL. */
static inline const char *mj_skip_string(const char *p, const char *end) {
    p++; /* opening quote */
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (++p >= end) return NULL;
            if (*p == 'u') {
                if (end - p < 5) return NULL;
                for (int i = 1; i <= 4; i++) {
                    if (mj_hex(p[i]) < 0) return NULL;
                }
                p += 4;
            } else if (*p == '\0' || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return NULL;
}

static inline const char *mj_skip_digits(const char *p, const char *end) {
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p > start ? p : NULL;
}

static inline const char *mj_skip_number(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') {
        p++;
    } else if ((p = mj_skip_digits(p, end)) == NULL) {
        return NULL;
    }
    if (p < end && *p == '.' && (p = mj_skip_digits(p + 1, end)) == NULL) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if ((p = mj_skip_digits(p, end)) == NULL) return NULL;
    }
    return p;
}

/* End of the value starting at `p` (no leading whitespace), or NULL if malformed. */
static inline const char *mj_skip(const char *p, const char *end, int depth) {
    if (p >= end || depth > MJ_MAX_DEPTH) return NULL;
    switch (*p) {
    case '"':
        return mj_skip_string(p, end);
    case '{':
    case '[': {
        const char close = *p == '{' ? '}' : ']';
        p = mj_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (p >= end || *p != '"' || (p = mj_skip_string(p, end)) == NULL) return NULL;
                p = mj_ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = mj_ws(p + 1, end);
            }
            if ((p = mj_skip(p, end, depth + 1)) == NULL) return NULL;
            p = mj_ws(p, end);
            if (p < end && *p == close) return p + 1;
            if (p >= end || *p != ',') return NULL;
            p = mj_ws(p + 1, end);
        }
    }
    case 't':
        return (size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return (size_t)(end - p) >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return (size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return mj_skip_number(p, end);
    }
}

/* Checks that `text` is exactly one JSON value (whitespace around allowed). */
static inline int mj_parse(const char *text, size_t len, mj_span *out) {
    const char *end = text + len;
    const char *p = mj_ws(text, end);
    const char *stop = mj_skip(p, end, 0);
    if (stop == NULL || mj_ws(stop, end) != end) return 0;
    out->p = p;
    out->n = (size_t)(stop - p);
    return 1;
}

static inline void mj_put_utf8(char **w, unsigned long cp) {
    unsigned char *o = (unsigned char *)*w;
    if (cp < 0x80) {
        *o++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *o++ = (unsigned char)(0xC0 | (cp >> 6));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (cp >> 12));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | (cp >> 18));
        *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    *w = (char *)o;
}

static inline unsigned long mj_hex4(const char *p) {
    return (unsigned long)(mj_hex(p[0]) << 12 | mj_hex(p[1]) << 8 | mj_hex(p[2]) << 4 | mj_hex(p[3]));
}

/* The decoded text of a string value as a NUL-terminated UTF-8 copy the
 * caller releases with free(); NULL when `s` is not a string (or on a
 * lone surrogate, or out of memory). `*len_out`, if not NULL, gets the
 * length, which counts any embedded NUL bytes. */
static inline char *mj_string_n(mj_span s, size_t *len_out) {
    if (s.n < 2 || s.p[0] != '"') return NULL;
    /* Every escape decodes to at most as many bytes as it occupies. */
    char *out = (char *)malloc(s.n);
    if (out == NULL) return NULL;
    char *w = out;
    const char *p = s.p + 1, *end = s.p + s.n - 1;
    while (p < end) {
        if (*p != '\\') {
            *w++ = *p++;
            continue;
        }
        p++;
        char c = *p++;
        switch (c) {
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            unsigned long cp = mj_hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned long lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? mj_hex4(p + 2) : 0;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    free(out);
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(out);
                return NULL;
            }
            mj_put_utf8(&w, cp);
            break;
        }
        default: *w++ = c; break; /* '"', '\\', '/' */
        }
    }
    *w = '\0';
    if (len_out != NULL) *len_out = (size_t)(w - out);
    return out;
}

static inline char *mj_string(mj_span s) { return mj_string_n(s, NULL); }

/* Whether the string value `s` decodes to exactly `text`. */
static inline int mj_string_is(mj_span s, const char *text) {
    size_t n = 0;
    char *got = mj_string_n(s, &n);
    int same = got != NULL && n == strlen(text) && memcmp(got, text, n) == 0;
    free(got);
    return same;
}

/* mj_member and mj_element take spans from mj_parse or from each other, so
 * the text is known to be well-formed. */

/* Member `key` of object `obj`; 0 when `obj` is not an object or has no such member. */
static inline int mj_member(mj_span obj, const char *key, mj_span *out) {
    const char *end = obj.p + obj.n;
    if (obj.n < 2 || obj.p[0] != '{') return 0;
    const char *p = mj_ws(obj.p + 1, end);
    while (p < end && *p == '"') {
        const char *key_end = mj_skip_string(p, end);
        mj_span k = {p, (size_t)(key_end - p)};
        p = mj_ws(mj_ws(key_end, end) + 1, end); /* past ':' */
        const char *value_end = mj_skip(p, end, 1);
        if (mj_string_is(k, key)) {
            out->p = p;
            out->n = (size_t)(value_end - p);
            return 1;
        }
        p = mj_ws(value_end, end);
        p = mj_ws(p + 1, end); /* past ',' (or the closing brace) */
    }
    return 0;
}

/* Element `index` of array `arr`; 0 when `arr` is not an array or is too short. */
static inline int mj_element(mj_span arr, size_t index, mj_span *out) {
    const char *end = arr.p + arr.n;
    if (arr.n < 2 || arr.p[0] != '[') return 0;
    const char *p = mj_ws(arr.p + 1, end);
    for (size_t i = 0; p < end - 1; i++) {
        const char *value_end = mj_skip(p, end, 1);
        if (i == index) {
            out->p = p;
            out->n = (size_t)(value_end - p);
            return 1;
        }
        p = mj_ws(mj_ws(value_end, end) + 1, end);
    }
    return 0;
}

static inline int mj_is_true(mj_span s) { return s.n == 4 && memcmp(s.p, "true", 4) == 0; }

/* A JSON integer (no fraction or exponent) of at most 18 digits. */
static inline int mj_integer(mj_span s, long long *out) {
    size_t i = s.n > 0 && s.p[0] == '-' ? 1 : 0;
    if (s.n == i || s.n - i > 18 || mj_skip_number(s.p, s.p + s.n) != s.p + s.n) return 0;
    long long v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return 0;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = s.p[0] == '-' ? -v : v;
    return 1;
}

#endif /* CARDBRIDGE_EXAMPLE_MINI_JSON_H */
