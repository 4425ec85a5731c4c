/* Second translation unit of the double-include check (see double_include_a.c). */
#include "cardbridge.h"
#include "cardbridge.h"

int double_include_b(void);

int double_include_b(void) {
    cardbridge_header h = {"a", 1, NULL, 0};
    return h.name_len == 1 && CARDBRIDGE_RESULT_REMOTE_UNKNOWN == 501 && sizeof(cardbridge_result) == 4;
}
