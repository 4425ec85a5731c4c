/* The header must compile on its own as C11 (-Wall -Wextra -Wpedantic -Werror):
 * nothing is included before it. Checked by tests/header.rs. */
#include "cardbridge.h"

_Static_assert(CARDBRIDGE_RESULT_OK == 0, "OK must be 0 so C can write if (rc)");
_Static_assert(sizeof(cardbridge_result) == 4, "cardbridge_result is a uint32_t");
_Static_assert(CARDBRIDGE_VERSION_NUMBER ==
                   ((CARDBRIDGE_VERSION_MAJOR << 16) | (CARDBRIDGE_VERSION_MINOR << 8) |
                    CARDBRIDGE_VERSION_PATCH),
               "composite version arithmetic");

/* Uses the public types so a broken declaration is an error, not a warning. */
size_t header_only_c(const cardbridge_header *h, cardbridge_bytes *b, cardbridge_error **err);

size_t header_only_c(const cardbridge_header *h, cardbridge_bytes *b, cardbridge_error **err) {
    const cardbridge_private_key *key = NULL;
    cardbridge_result rc = cardbridge_private_key_from_pem(h->value, h->value_len, &key, err);
    if (rc == CARDBRIDGE_RESULT_OK) {
        rc = cardbridge_private_key_public_key_pem(key, b, err);
        cardbridge_private_key_free(key);
    }
    return h->name_len + b->len + (size_t)rc;
}
