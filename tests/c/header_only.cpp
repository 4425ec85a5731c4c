// The header must compile on its own as C++17 (-Wall -Wextra -Wpedantic -Werror):
// nothing is included before it. Checked by tests/header.rs.
#include "cardbridge.h"

#include <cstdint>
#include <type_traits>

static_assert(CARDBRIDGE_RESULT_OK == 0, "OK must be 0 so C can write if (rc)");
static_assert(std::is_same<std::underlying_type<cardbridge_result>::type, std::uint32_t>::value,
              "cardbridge_result has uint32_t as underlying type in C++");
static_assert(CARDBRIDGE_VERSION_NUMBER ==
                  ((CARDBRIDGE_VERSION_MAJOR << 16) | (CARDBRIDGE_VERSION_MINOR << 8) |
                   CARDBRIDGE_VERSION_PATCH),
              "composite version arithmetic");

// Uses the public types so a broken declaration is an error, not a warning.
std::size_t header_only_cpp(const cardbridge_header &h, cardbridge_bytes &b, cardbridge_error **err);

std::size_t header_only_cpp(const cardbridge_header &h, cardbridge_bytes &b, cardbridge_error **err) {
    const cardbridge_private_key *key = nullptr;
    cardbridge_result rc = cardbridge_private_key_from_pem(h.value, h.value_len, &key, err);
    if (rc == CARDBRIDGE_RESULT_OK) {
        rc = cardbridge_private_key_public_key_pem(key, &b, err);
        cardbridge_private_key_free(key);
    }
    return h.name_len + b.len + static_cast<std::size_t>(rc);
}
