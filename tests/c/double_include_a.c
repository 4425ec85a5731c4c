/* Two translation units, each including the header twice, linked into one
 * program (tests/header.rs runs it; exit code 0 means every check passed). */
#include "cardbridge.h"
#include "cardbridge.h"

int double_include_b(void);

static int double_include_a(void) {
    cardbridge_bytes b = {NULL, 0};
    return b.len == 0 && CARDBRIDGE_RESULT_PANIC == 4;
}

int main(void) {
    return double_include_a() && double_include_b() ? 0 : 1;
}
