// crm_raii.cpp - the CRM flow of examples/c/crm_integration.c in C++17, with
// a thin RAII layer over cardbridge's C ABI:
//   - every handle is owned by a std::unique_ptr with a deleter calling its
//     cardbridge_*_free, or by a small move-only class (Bytes);
//   - a failed call throws cardbridge::Error (or ValidationError,
//     RemoteFailed, RemoteUnknown) carrying everything the cardbridge_error
//     said; the native error object is freed before the throw;
//   - text goes in as std::string_view, raw bodies as std::vector<uint8_t>,
//     and results come back as owned std::string / std::vector<uint8_t>.
//
// The platform is played by test support outside the library: the `cardbridge
// emulator` binary (its issueCard endpoint, and the platform's signed calls,
// minted through its control API), driven by examples/c/emulator_client.h.
//
// Build from the repository root (after `cargo build`):
//   g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/cpp/crm_raii.cpp
//       -Ltarget/debug -lcardbridge -Wl,-rpath,"$PWD/target/debug" -o target/crm_raii
// Run (CARDBRIDGE_BIN: the cardbridge binary; default `cardbridge` on PATH):
//   CARDBRIDGE_BIN=target/debug/cardbridge target/crm_raii [--keys DIR/] [--db PATH]
//   (defaults: tests/fixtures/keys/, crm_raii.db)
// Exits 0 when every step had the outcome the CRM expected.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "cardbridge.h"
#include "../c/emulator_client.h"
#include "../c/mini_json.h"

namespace cardbridge {

// ---------------------------------------------------------------------------
// Ownership helpers
// ---------------------------------------------------------------------------

// A unique_ptr deleter calling a cardbridge_*_free function.
template <auto Free>
struct Deleter {
    template <class T>
    void operator()(T *p) const noexcept {
        Free(p);
    }
};

template <class T, auto Free>
using Handle = std::unique_ptr<T, Deleter<Free>>;

using ErrorHandle = Handle<cardbridge_error, cardbridge_error_free>;

// A library-allocated buffer; released with cardbridge_bytes_free.
class Bytes {
public:
    Bytes() = default;
    Bytes(const Bytes &) = delete;
    Bytes &operator=(const Bytes &) = delete;
    Bytes(Bytes &&other) noexcept : b_(std::exchange(other.b_, cardbridge_bytes{nullptr, 0})) {}
    ~Bytes() { cardbridge_bytes_free(&b_); }

    // For an output parameter: releases what was held (the library overwrites without freeing).
    cardbridge_bytes *out() noexcept {
        cardbridge_bytes_free(&b_);
        return &b_;
    }
    std::string_view view() const noexcept { return {reinterpret_cast<const char *>(b_.data), b_.len}; }
    std::string str() const { return std::string(view()); }

private:
    cardbridge_bytes b_{nullptr, 0};
};

inline std::string_view view(const uint8_t *data, size_t len) {
    return {reinterpret_cast<const char *>(data), len};
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// Everything a cardbridge_error says.
class Error : public std::runtime_error {
public:
    struct Detail {
        cardbridge_result code;
        std::string message, field, limit, remote_status, remote_code, remote_message;
        uint16_t http_status;
    };
    explicit Error(Detail d) : std::runtime_error(d.message), d_(std::move(d)) {}
    cardbridge_result code() const noexcept { return d_.code; }
    const char *name() const noexcept { return cardbridge_result_name(d_.code); }
    const Detail &detail() const noexcept { return d_; }

private:
    Detail d_;
};

// CARDBRIDGE_RESULT_VALIDATION: detail().field and detail().limit say what broke.
struct ValidationError : Error {
    using Error::Error;
};
// CARDBRIDGE_RESULT_REMOTE_FAILED: the platform refused for good.
struct RemoteFailed : Error {
    using Error::Error;
};
// CARDBRIDGE_RESULT_REMOTE_UNKNOWN: outcome unknown; retry with the same request later.
struct RemoteUnknown : Error {
    using Error::Error;
};

namespace detail {

using TextAccessor = cardbridge_result (*)(const cardbridge_error *, char *, size_t, size_t *);

// One text accessor, through the size query then the copy.
inline std::string text(TextAccessor accessor, const cardbridge_error *err) {
    size_t needed = 0, written = 0;
    if (accessor(err, nullptr, 0, &needed) != CARDBRIDGE_RESULT_INSUFFICIENT_SIZE) return {};
    std::string buf(needed, '\0');
    if (accessor(err, buf.data(), buf.size(), &written) != CARDBRIDGE_RESULT_OK) return {};
    buf.resize(written);
    return buf;
}

// Throws the exception for a failed call; takes ownership of `raw` (may be NULL).
[[noreturn]] inline void raise(cardbridge_result rc, cardbridge_error *raw) {
    ErrorHandle err(raw);
    Error::Detail d{rc, cardbridge_result_name(rc), {}, {}, {}, {}, {}, 0};
    if (err) {
        d.message = text(cardbridge_error_message, err.get());
        d.field = text(cardbridge_error_field, err.get());
        d.limit = text(cardbridge_error_limit, err.get());
        d.remote_status = text(cardbridge_error_remote_status, err.get());
        d.remote_code = text(cardbridge_error_remote_code, err.get());
        d.remote_message = text(cardbridge_error_remote_message, err.get());
        d.http_status = cardbridge_error_http_status(err.get());
    }
    switch (rc) {
    case CARDBRIDGE_RESULT_VALIDATION: throw ValidationError(std::move(d));
    case CARDBRIDGE_RESULT_REMOTE_FAILED: throw RemoteFailed(std::move(d));
    case CARDBRIDGE_RESULT_REMOTE_UNKNOWN: throw RemoteUnknown(std::move(d));
    default: throw Error(std::move(d));
    }
}

// Every fallible call goes through here: `call` gets the error out-parameter.
template <class F>
void check(F &&call) {
    cardbridge_error *err = nullptr;
    cardbridge_result rc = call(&err);
    if (rc != CARDBRIDGE_RESULT_OK) raise(rc, err);
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------

class Store {
public:
    static Store open_sqlite(std::string_view path) {
        const cardbridge_store *s = nullptr;
        detail::check([&](cardbridge_error **e) { return cardbridge_store_open_sqlite(path.data(), path.size(), &s, e); });
        return Store(s);
    }
    const cardbridge_store *get() const noexcept { return h_.get(); }

private:
    explicit Store(const cardbridge_store *s) : h_(s) {}
    Handle<const cardbridge_store, cardbridge_store_free> h_;
};

// An HTTP response to send back (status, headers, body).
class Response {
public:
    explicit Response(cardbridge_http_response *r) : h_(r) {}
    uint16_t status() const noexcept { return cardbridge_http_response_status(h_.get()); }
    std::vector<uint8_t> body() const {
        const uint8_t *data = nullptr;
        size_t len = 0;
        detail::check([&](cardbridge_error **e) { return cardbridge_http_response_body(h_.get(), &data, &len, e); });
        return std::vector<uint8_t>(data, data + len);
    }

private:
    Handle<cardbridge_http_response, cardbridge_http_response_free> h_;
};

// A platform call waiting for the host's decision.
class Call {
public:
    explicit Call(cardbridge_alipayplus_call *c) : h_(c) {}
    uint32_t api() const noexcept { return cardbridge_alipayplus_call_api(h_.get()); }
    // Borrowed: valid while this Call lives.
    std::string_view request() const {
        const uint8_t *json = nullptr;
        size_t len = 0;
        detail::check([&](cardbridge_error **e) { return cardbridge_alipayplus_call_request(h_.get(), &json, &len, e); });
        return view(json, len);
    }
    cardbridge_alipayplus_call *get() const noexcept { return h_.get(); }

private:
    Handle<cardbridge_alipayplus_call, cardbridge_alipayplus_call_free> h_;
};

// The raw parts of an incoming HTTP request, as a web server has them (views).
struct IncomingRequest {
    std::string_view method, target;
    std::vector<cardbridge_header> headers;
    std::vector<uint8_t> body;
};

class AlipayPlus {
public:
    AlipayPlus(std::string_view config_json, const Store &store) {
        const cardbridge_alipayplus *a = nullptr;
        detail::check([&](cardbridge_error **e) {
            return cardbridge_alipayplus_new(config_json.data(), config_json.size(), store.get(), &a, e);
        });
        h_.reset(a);
    }

    // Step 1: either the answer to send now, or a call for the host to decide.
    std::variant<Response, Call> begin(const IncomingRequest &r, int64_t now_ms) const {
        cardbridge_http_response *response = nullptr;
        cardbridge_alipayplus_call *call = nullptr;
        detail::check([&](cardbridge_error **e) {
            return cardbridge_alipayplus_begin(h_.get(), r.method.data(), r.method.size(), r.target.data(),
                                               r.target.size(), r.headers.data(), r.headers.size(), r.body.data(),
                                               r.body.size(), now_ms, &response, &call, e);
        });
        if (response != nullptr) return Response(response);
        return Call(call);
    }

    Response finish(Call &call, std::string_view decision_json, int64_t now_ms) const {
        cardbridge_http_response *response = nullptr;
        detail::check([&](cardbridge_error **e) {
            return cardbridge_alipayplus_finish(h_.get(), call.get(), decision_json.data(), decision_json.size(),
                                                now_ms, &response, e);
        });
        return Response(response);
    }

    Response finish_unknown(Call &call, int64_t now_ms) const {
        cardbridge_http_response *response = nullptr;
        detail::check([&](cardbridge_error **e) {
            return cardbridge_alipayplus_finish_unknown(h_.get(), call.get(), now_ms, &response, e);
        });
        return Response(response);
    }

    // The platform's verified answer (wire JSON with cardNo).
    std::string issue_card(std::string_view request_json) const {
        Bytes answer;
        detail::check([&](cardbridge_error **e) {
            return cardbridge_alipayplus_issue_card(h_.get(), request_json.data(), request_json.size(), answer.out(),
                                                    e);
        });
        return answer.str();
    }

    // The JSON report of every pending issueCard re-sent.
    std::string resume_pending() const {
        Bytes report;
        detail::check([&](cardbridge_error **e) { return cardbridge_alipayplus_resume_pending(h_.get(), report.out(), e); });
        return report.str();
    }

    static std::string build_issue_card(std::string_view registration_json, std::string_view external_customer_id,
                                        std::string_view register_date, std::string_view card_fields_json) {
        Bytes request;
        detail::check([&](cardbridge_error **e) {
            return cardbridge_alipayplus_build_issue_card(
                registration_json.data(), registration_json.size(), external_customer_id.data(),
                external_customer_id.size(), register_date.data(), register_date.size(), card_fields_json.data(),
                card_fields_json.size(), nullptr, 0, request.out(), e);
        });
        return request.str();
    }

private:
    Handle<const cardbridge_alipayplus, cardbridge_alipayplus_free> h_;
};

// ---- test support: the platform's side ----
// The `cardbridge emulator` binary, started and driven through its control API
// by ../c/emulator_client.h; the library itself contains no emulator.

// A signed platform -> merchant request minted by the emulator; owns the views it hands out.
class PlatformRequest {
public:
    explicit PlatformRequest(const emu_request &r) : r_(r) {}
    ~PlatformRequest() { emu_request_free(&r_); }
    PlatformRequest(const PlatformRequest &) = delete;
    PlatformRequest &operator=(const PlatformRequest &) = delete;
    // The parts a web server would pass on; borrowed from this request.
    IncomingRequest parts() const {
        IncomingRequest in;
        in.method = r_.method;
        in.target = r_.target;
        in.body.assign(r_.body, r_.body + r_.body_len);
        in.headers.assign(r_.headers, r_.headers + r_.header_count);
        return in;
    }

private:
    emu_request r_;
};

class Emulator {
public:
    explicit Emulator(const std::string &config_json) {
        if (!emu_start(&e_, config_json.c_str())) {
            throw std::runtime_error("the cardbridge emulator did not start (CARDBRIDGE_BIN: the cardbridge binary)");
        }
    }
    ~Emulator() { emu_stop(&e_); }
    Emulator(const Emulator &) = delete;
    Emulator &operator=(const Emulator &) = delete;
    std::string base_url() const { return e_.url; }
    void push_fault(const std::string &fault_json) const {
        std::unique_ptr<char, decltype(&std::free)> answer(emu_ok(&e_, "POST", "/alipayplus/faults", fault_json.c_str()),
                                                           &std::free);
        if (!answer) throw std::runtime_error("the emulator refused the fault");
    }
    long long issue_card_hits() const { return emu_counter(&e_, "alipayplus", "issue_card_hits", nullptr); }
    long long cards_issued() const { return emu_counter(&e_, "alipayplus", "cards_issued", nullptr); }
    // The platform's signed POST of `body` (JSON text) to `target`, as the platform sends it.
    PlatformRequest post(std::string_view target, std::string_view body) const {
        return mint("{\"target\":" + json_text(target) + ",\"body\":" + json_text(body) + "}");
    }
    // The emulator's sample notifyCardRegistration body for `request_id`.
    std::string sample_registration(std::string_view request_id) const {
        PlatformRequest r = mint("{\"request_id\":" + json_text(request_id) + "}");
        const std::vector<uint8_t> body = r.parts().body;
        return std::string(body.begin(), body.end());
    }

private:
    static std::string json_text(std::string_view s) {
        emu_text t = {nullptr, 0, 0};
        const std::string copy(s);
        if (!emu_add_json(&t, copy.c_str())) throw std::bad_alloc();
        std::string out(t.p, t.n);
        std::free(t.p);
        return out;
    }
    PlatformRequest mint(const std::string &call) const {
        emu_request r;
        if (!emu_mint(&e_, "/alipayplus/mint", call.c_str(), &r)) throw std::runtime_error("the emulator did not sign the call");
        return PlatformRequest(r);
    }
    emu_process e_;
};

}  // namespace cardbridge

// ===========================================================================
// The CRM
// ===========================================================================

namespace {

namespace cb = cardbridge;

constexpr std::string_view kClientId = "2022CRM_DEMO_CLIENT";
constexpr std::string_view kNotifyTarget = "/v2/pds/memberships/notifyCardRegistration";
constexpr std::string_view kDecisionSuccess =
    R"({"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}})";
constexpr std::string_view kDecisionNoContact =
    R"({"result":{"resultCode":"PROCESS_FAIL","resultStatus":"F",)"
    R"("resultMessage":"registration needs an email address or a mobile phone number"}})";

int surprises = 0;

void expect(bool ok, std::string_view what) {
    if (!ok) {
        surprises++;
        std::cout << "  UNEXPECTED: " << what << "\n";
    }
}

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string utc_now(std::string_view suffix) {
    std::time_t t = static_cast<std::time_t>(now_ms() / 1000);
    char stamp[32] = "";
    if (const std::tm *utc = std::gmtime(&t)) std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", utc);
    return std::string(stamp) + std::string(suffix);
}

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---- JSON, through examples/c/mini_json.h ----

std::optional<mj_span> parse_json(std::string_view text) {
    mj_span doc;
    if (!mj_parse(text.data(), text.size(), &doc)) return std::nullopt;
    return doc;
}

std::optional<mj_span> member_of(std::optional<mj_span> obj, const char *key) {
    mj_span out;
    if (!obj || !mj_member(*obj, key, &out)) return std::nullopt;
    return out;
}

std::optional<std::string> string_of(std::optional<mj_span> value) {
    if (!value) return std::nullopt;
    size_t len = 0;
    std::unique_ptr<char, decltype(&std::free)> s(mj_string_n(*value, &len), &std::free);
    if (!s) return std::nullopt;
    return std::string(s.get(), len);
}

std::string json_quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// ---- the CRM's data ----

struct Member {
    std::string id, name, email, level;
    long points = 0;
    std::string card_no;             // set once the platform issued the card
    std::string pending_request_id;  // issueCard outcome unknown: resume later
};

class Crm {
public:
    std::vector<Member> members;
    int registrations_decided = 0;

    size_t add(std::string name, std::string email, std::string level, long points) {
        char id[16];
        std::snprintf(id, sizeof id, "M-%06zu", members.size() + 1);
        members.push_back(Member{id, std::move(name), std::move(email), std::move(level), points, {}, {}});
        return members.size() - 1;
    }

    // The business decision from the registration JSON: a contact is
    // required; a known email links to that member, anything else creates one.
    // Returns the answer body (nullopt: cannot decide now) and the member index.
    std::pair<std::optional<std::string_view>, std::optional<size_t>> decide(std::string_view registration_json) {
        registrations_decided++;
        auto doc = parse_json(registration_json);
        if (!doc) return {std::nullopt, std::nullopt};
        auto field = [&](const char *code) -> std::optional<std::string> {
            auto fields = member_of(doc, "registrationFields");
            mj_span f;
            for (size_t i = 0; fields && mj_element(*fields, i, &f); i++) {
                if (string_of(member_of(f, "fieldCode")) == code) return string_of(member_of(f, "fieldValue"));
            }
            return std::nullopt;
        };
        auto name = field("USER_NAME"), email = field("EMAIL"), phone = field("MOBILE_PHONE");
        if (!email && !phone) {
            std::cout << "  CRM: no email or phone -> refused\n";
            return {kDecisionNoContact, std::nullopt};
        }
        for (size_t i = 0; email && i < members.size(); i++) {
            if (members[i].email == *email) {
                std::cout << "  CRM: " << *email << " is already member " << members[i].id << " -> linked\n";
                return {kDecisionSuccess, i};
            }
        }
        size_t i = add(name.value_or("(no name)"), email.value_or(""), "BASIC", 0);
        std::cout << "  CRM: new member " << members[i].id << " (" << members[i].name << ")\n";
        return {kDecisionSuccess, i};
    }
};

// What the CRM's endpoint produced for one platform request.
struct Served {
    std::optional<cb::Response> response;  // nullopt: answer HTTP 500
    std::optional<size_t> member;          // who gets a card
    std::string issue_request;             // the issueCard to send after answering
};

void print_error(std::string_view what, const cb::Error &e) {
    const auto &d = e.detail();
    std::cout << "  ! " << what << " failed: " << e.name() << " (" << d.code << ")\n"
              << "    message: " << d.message << "\n";
    if (!d.field.empty()) std::cout << "    field:   " << d.field << "\n";
    if (!d.limit.empty()) std::cout << "    limit:   " << d.limit << "\n";
    if (!d.remote_code.empty())
        std::cout << "    platform answered: " << d.remote_status << " " << d.remote_code << " \"" << d.remote_message
                  << "\"\n";
    if (d.http_status != 0) std::cout << "    HTTP status: " << d.http_status << "\n";
}

// The CRM's endpoint for platform calls: begin -> decide -> finish.
Served serve_platform_call(Crm &crm, const cb::AlipayPlus &ap, const cb::IncomingRequest &in) {
    Served out;
    try {
        auto begun = ap.begin(in, now_ms());
        if (auto *response = std::get_if<cb::Response>(&begun)) {
            std::cout << "  cardbridge answered by itself\n";
            out.response = std::move(*response);
            return out;
        }
        auto &call = std::get<cb::Call>(begun);
        std::optional<std::string_view> decision;
        std::optional<size_t> member;
        if (call.api() == CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION) {
            std::tie(decision, member) = crm.decide(call.request());
        }
        if (!decision) {
            out.response = ap.finish_unknown(call, now_ms());
            return out;
        }
        try {
            out.response = ap.finish(call, *decision, now_ms());
        } catch (const cb::Error &e) {
            // The library refused our decision (e.g. a too-long resultMessage): answer U.
            print_error("cardbridge_alipayplus_finish", e);
            out.response = ap.finish_unknown(call, now_ms());
            return out;
        }
        if (member) {
            // The request view dies with `call`: build the issueCard now, send it after answering.
            const Member &m = crm.members[*member];
            std::string fields = R"([{"fieldCode":"POINT","fieldValue":)" + json_quote(std::to_string(m.points)) +
                                 R"(},{"fieldCode":"LEVEL","fieldValue":)" + json_quote(m.level) + "}]";
            out.issue_request = cb::AlipayPlus::build_issue_card(call.request(), m.id, utc_now("+00:00"), fields);
            out.member = member;
        }
    } catch (const cb::Error &e) {
        print_error("serving the platform call", e);
    }
    return out;
}

// Sends the issueCard for member `i`; returns the result code.
cardbridge_result issue_card(Crm &crm, const cb::AlipayPlus &ap, size_t i, std::string_view request) {
    Member &m = crm.members[i];
    try {
        std::string answer = ap.issue_card(request);
        m.card_no = string_of(member_of(parse_json(answer), "cardNo")).value_or("");
        std::cout << "  issueCard: card " << m.card_no << " issued to " << m.id << "\n";
        return CARDBRIDGE_RESULT_OK;
    } catch (const cb::RemoteUnknown &e) {
        // Nothing is lost: the request sits in the store's outbox.
        print_error("issueCard", e);
        m.pending_request_id = string_of(member_of(parse_json(request), "requestId")).value_or("");
        std::cout << "  issueCard: outcome unknown, requestId " << m.pending_request_id << " kept for " << m.id << "\n";
        return e.code();
    } catch (const cb::RemoteFailed &e) {
        print_error("issueCard", e);
        std::cout << "  issueCard: the platform refused the card for " << m.id << "; flagged for the membership team\n";
        return e.code();
    }
}

// Re-sends every pending issueCard and settles the kept requestIds (outbox
// ids end in "/<requestId>"). Returns how many cards it settled.
int resume_pending(Crm &crm, const cb::AlipayPlus &ap) {
    std::string report = ap.resume_pending();
    std::cout << "  resume_pending report: " << report << "\n";
    int settled = 0;
    auto entries = parse_json(report);
    mj_span entry;
    for (size_t k = 0; entries && mj_element(*entries, k, &entry); k++) {
        std::string id = string_of(member_of(entry, "id")).value_or("");
        auto ok = member_of(entry, "ok");
        for (Member &m : crm.members) {
            const std::string suffix = "/" + m.pending_request_id;
            if (m.pending_request_id.empty() || id.size() <= suffix.size() ||
                id.compare(id.size() - suffix.size(), suffix.size(), suffix) != 0) {
                continue;
            }
            if (ok && mj_is_true(*ok)) {
                m.card_no = string_of(member_of(member_of(entry, "response"), "cardNo")).value_or("");
                m.pending_request_id.clear();
                settled++;
                std::cout << "  resumed: card " << m.card_no << " issued to " << m.id << "\n";
            } else {
                std::string name = string_of(member_of(entry, "name")).value_or("failing");
                std::cout << "  resumed: " << m.id << " still " << name << "\n";
                if (name != "CARDBRIDGE_RESULT_REMOTE_UNKNOWN") m.pending_request_id.clear();
            }
        }
    }
    return settled;
}

std::string registration_body(std::string_view request_id, std::string_view customer_id,
                              std::optional<std::string_view> name, std::optional<std::string_view> email) {
    std::string fields;
    if (name) fields += R"({"fieldCode":"USER_NAME","fieldValue":)" + json_quote(*name) + "}";
    if (email) fields += (fields.empty() ? "" : ",") + std::string(R"({"fieldCode":"EMAIL","fieldValue":)") + json_quote(*email) + "}";
    return R"({"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":)" + json_quote(request_id) +
           R"(,"customerId":)" + json_quote(customer_id) + R"(,"registrationFields":[)" + fields + "]}";
}

// The platform posts `body`; the CRM's web server passes the parts on and
// sends back the response, whose body is returned (empty for HTTP 500).
std::vector<uint8_t> platform_posts(const cb::Emulator &platform, Crm &crm, const cb::AlipayPlus &ap,
                                    std::string_view body, Served &served) {
    cb::PlatformRequest request = platform.post(kNotifyTarget, body);
    served = serve_platform_call(crm, ap, request.parts());
    if (!served.response) {
        std::cout << "  -> HTTP 500\n";
        return {};
    }
    std::vector<uint8_t> sent = served.response->body();
    std::cout << "  -> HTTP " << served.response->status() << " " << cb::view(sent.data(), sent.size()) << "\n";
    return sent;
}

bool contains(const std::vector<uint8_t> &body, std::string_view needle) {
    return cb::view(body.data(), body.size()).find(needle) != std::string_view::npos;
}

int run(const std::string &keys, const std::string &db_path) {
    std::cout << "CRM starting with " << cardbridge_version() << "\n";
    const std::string merchant_private = read_file(keys + "test_merchant_private.pem");
    const std::string merchant_public = read_file(keys + "test_merchant_public.pem");
    const std::string platform_private = read_file(keys + "test_platform_private.pem");
    const std::string platform_public = read_file(keys + "test_platform_public.pem");

    cb::Emulator emulator("{\"platform_private_key\":" + json_quote(platform_private) +
                          ",\"merchant_public_key\":" + json_quote(merchant_public) +
                          ",\"client_id\":" + json_quote(kClientId) + "}");
    const std::string config =
        "{\"client_id\":" + json_quote(kClientId) + ",\"merchant_private_key\":" + json_quote(merchant_private) +
        ",\"platform_public_key\":" + json_quote(platform_public) + ",\"base_url\":" + json_quote(emulator.base_url()) +
        R"(,"connect_timeout_ms":10000,"read_timeout_ms":60000,)"
        R"("retry":{"max_attempts":2,"base_delay_ms":10,"max_delay_ms":50,"deadline_ms":300000}})";
    // The integration keeps its own reference to the store; ours ends with this scope.
    const cb::AlipayPlus ap = [&] {
        cb::Store store = cb::Store::open_sqlite(db_path);
        return cb::AlipayPlus(config, store);
    }();
    std::cout << "configuration built in code, store " << db_path << "\n";

    Crm crm;
    size_t ana = crm.add("Ana Lima", "ana@example.com", "GOLD", 1200);
    const std::string run_id = "CRM" + std::to_string(now_ms());
    Served served;

    std::cout << "\n[start-up] finish issueCard calls a previous run left undecided\n";
    resume_pending(crm, ap);

    std::cout << "\n[1] a new customer registers\n";
    const std::string sample = emulator.sample_registration(run_id + "A");
    const std::vector<uint8_t> first = platform_posts(emulator, crm, ap, sample, served);
    expect(contains(first, R"("resultStatus":"S")"), "registration 1 answered S");
    expect(served.member.has_value(), "registration 1 gets a card");
    if (served.member) {
        cardbridge_result rc = issue_card(crm, ap, *served.member, served.issue_request);
        expect(rc == CARDBRIDGE_RESULT_OK && !crm.members[*served.member].card_no.empty(),
               "card issued for registration 1");
    }

    std::cout << "\n[2] the platform resends registration 1\n";
    int decided = crm.registrations_decided;
    std::vector<uint8_t> sent = platform_posts(emulator, crm, ap, sample, served);
    expect(crm.registrations_decided == decided && !served.member, "the duplicate did not reach the CRM");
    expect(!sent.empty() && sent == first, "the duplicate got the stored answer byte for byte");

    std::cout << "\n[3] a registration without email or phone\n";
    sent = platform_posts(emulator, crm, ap, registration_body(run_id + "B", "2109000000000002", "Nobody", std::nullopt),
                          served);
    expect(contains(sent, R"("resultCode":"PROCESS_FAIL")") && !served.member,
           "registration 3 refused with PROCESS_FAIL");

    std::cout << "\n[4] an existing customer registers; the platform cannot confirm the card\n";
    for (int k = 0; k < 2; k++) emulator.push_fault(R"({"fault":"unknown"})");  // = retry.max_attempts
    platform_posts(emulator, crm, ap, registration_body(run_id + "C", "2109000000000003", "Ana", "ana@example.com"),
                   served);
    expect(served.member == ana, "registration 4 linked to member M-000001");
    if (served.member) {
        cardbridge_result rc = issue_card(crm, ap, *served.member, served.issue_request);
        expect(rc == CARDBRIDGE_RESULT_REMOTE_UNKNOWN && crm.members[ana].pending_request_id == run_id + "C",
               "issueCard outcome unknown, requestId kept");
    }

    std::cout << "\n[5] later: resume the pending issueCard\n";
    int settled = resume_pending(crm, ap);
    expect(settled == 1 && !crm.members[ana].card_no.empty() && crm.members[ana].pending_request_id.empty(),
           "the pending card was issued on resume");

    std::cout << "\n[6] a new customer registers; the platform refuses the card\n";
    emulator.push_fault(R"({"fault":"fail","message":"membership programme paused"})");
    platform_posts(emulator, crm, ap, registration_body(run_id + "D", "2109000000000004", "Bo Chen", "bo@example.com"),
                   served);
    expect(served.member.has_value(), "registration 6 gets a card");
    if (served.member) {
        cardbridge_result rc = issue_card(crm, ap, *served.member, served.issue_request);
        expect(rc == CARDBRIDGE_RESULT_REMOTE_FAILED && crm.members[*served.member].card_no.empty(),
               "issueCard refused with REMOTE_FAILED");
    }

    std::cout << "\nmembers:\n";
    for (const Member &m : crm.members) {
        std::cout << "  " << m.id << " " << m.name << " <" << m.email << "> card "
                  << (m.card_no.empty() ? "-" : m.card_no) << "\n";
    }
    std::cout << "emulator: " << emulator.issue_card_hits() << " issueCard requests, " << emulator.cards_issued()
              << " cards issued\n";
    std::cout << "CRM run finished: " << surprises << " unexpected outcome(s)\n";
    return surprises == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char **argv) {
    std::string keys = "tests/fixtures/keys/", db = "crm_raii.db";
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        std::string_view option = argv[i];
        if (option == "--keys") {
            keys = argv[i + 1];
        } else if (option == "--db") {
            db = argv[i + 1];
        } else {
            break;
        }
    }
    if (i != argc) {
        std::cerr << "usage: " << argv[0] << " [--keys DIR/] [--db PATH]\n";
        return 2;
    }
    try {
        return run(keys, db);
    } catch (const cardbridge::Error &e) {
        std::cerr << "crm: " << e.name() << ": " << e.what() << "\n";
    } catch (const std::exception &e) {
        std::cerr << "crm: " << e.what() << "\n";
    }
    return 1;
}
