// BackendLogin, the pooler's own login to a server. The first input byte picks a mode:
//   even  hostile server: a knob byte (credential kind, max_message_size), an 8-byte seed for the chunk
//         boundaries, then whatever the "server" sends, fed at those boundaries. It must never crash; the
//         status only moves forward; kFailed carries a five-character SQLSTATE and no secret the input did
//         not itself contain; kDone means the consumed bytes are a login ending in ReadyForQuery, whose
//         ParameterStatus, BackendKeyData and leftover bytes are exactly what BackendLogin reports.
//   odd   honest server: a ScramServer with a salt, 1..16 iterations and a password from the input, logged in
//         to with the password or with keys; with a flipped bit in the password, ClientKey or ServerKey the
//         login must fail with 28P01, and succeed otherwise.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/backend_login.h"
#include "protocol/auth_messages.h"
#include "protocol/base64.h"
#include "protocol/frame.h"
#include "protocol/md5_auth.h"
#include "protocol/reader.h"
#include "protocol/scram.h"
#include "protocol/writer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace pooler;
using Status = protocol::BackendLogin::Status;

constexpr std::string_view kUser = "fuzzuser";
constexpr std::string_view kPassword = "fuzz-password-Zq9";
constexpr std::string_view kSalt = "fuzz-salt-16byte";
constexpr int kIterations = 16;
// Fixed so the fuzzer can build a server-first-message that extends it (make_corpus.py's seeds do).
constexpr std::string_view kClientNonce = "fuzznonce";

std::vector<std::pair<std::string, std::string>> startup_params() {
  return {{"user", std::string(kUser)}, {"database", "db"}};
}

const protocol::ScramKeys& hostile_keys() {
  static const protocol::ScramKeys keys = protocol::scram_keys_from_password(kPassword, kSalt, kIterations);
  return keys;
}

// Each secret BackendLogin is given, in the spellings an error message could leak it in.
const std::vector<std::string>& secret_spellings() {
  static const std::vector<std::string> all = [] {
    const std::string md5 = protocol::md5_secret(kPassword, kUser);
    std::vector<std::string> out = {std::string(kPassword), md5, md5.substr(3)};
    for (const auto& key : {hostile_keys().client_key, hostile_keys().server_key}) {
      std::string raw(reinterpret_cast<const char*>(key.data()), key.size());
      out.push_back(raw);
      out.push_back(protocol::base64_encode(raw));
    }
    return out;
  }();
  return all;
}

bool is_sqlstate(std::string_view s) {
  if (s.size() != 5) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

// Chunk sizes drawn from `rng`: mostly small, sometimes everything at once.
std::size_t next_chunk(fuzz::Rng& rng, std::size_t remaining) {
  if (remaining == 0) return 0;
  switch (rng.below(4)) {
    case 0: return 1;
    case 1: return remaining;
    default: return 1 + rng.below(remaining < 64 ? remaining : 64);
  }
}

// What a login that ended in kDone must have seen: re-reads the consumed bytes on their own.
void check_done(const protocol::BackendLogin& login, std::string_view consumed, std::string_view leftover) {
  std::vector<std::pair<std::string, std::string>> params;
  std::int32_t pid = 0;
  std::int32_t key = 0;
  bool ok_seen = false;
  char last = 0;
  while (!consumed.empty()) {
    auto frame = protocol::decode_frame(consumed, SIZE_MAX);
    FUZZ_CHECK(frame && frame->has_value());
    const protocol::Frame f = **frame;
    consumed.remove_prefix(f.size);
    last = f.type;
    protocol::Reader r(f.body);
    if (f.type == 'R' && f.body.size() == 4 && *r.int32() == 0) ok_seen = true;
    if (f.type == 'S') {
      std::string name(*r.cstring());
      std::string value(*r.cstring());
      bool found = false;
      for (auto& [n, v] : params) {
        if (n == name) {
          v = value;
          found = true;
        }
      }
      if (!found) params.emplace_back(name, value);
    }
    if (f.type == 'K') {
      pid = *r.int32();
      key = *r.int32();
    }
    FUZZ_CHECK(f.type != 'E');
  }
  FUZZ_CHECK(ok_seen && last == 'Z');
  FUZZ_CHECK(login.params() == params);
  FUZZ_CHECK(login.backend_pid() == pid && login.cancel_key() == key);
  FUZZ_CHECK(login.leftover() == leftover);
}

void hostile_server(fuzz::Input& in) {
  const std::uint8_t knobs = in.byte();
  fuzz::Rng rng(in.u64());
  const std::string_view stream = in.rest();

  protocol::LoginCredentials credentials;
  switch (knobs & 3) {
    case 0: credentials = protocol::NoCredentials{}; break;
    case 1: credentials = protocol::PlainPassword{std::string(kPassword)}; break;
    case 2: credentials = protocol::Md5Secret{protocol::md5_secret(kPassword, kUser)}; break;
    case 3: credentials = hostile_keys(); break;
  }
  static constexpr std::size_t kLimits[] = {1024 * 1024, 0, 16, 256};
  protocol::BackendLogin login(startup_params(), credentials, kLimits[(knobs >> 2) & 3]);
  login.set_scram_client_nonce(std::string(kClientNonce));
  // The server picks the PBKDF2 cost; keep each input cheap.
  login.set_scram_max_iterations(kIterations);
  FUZZ_CHECK(!login.start().empty());

  std::size_t fed = 0;
  std::size_t fed_at_end = 0;
  Status previous = Status::kInProgress;
  std::string out;
  while (fed < stream.size()) {
    const std::size_t n = next_chunk(rng, stream.size() - fed);
    const std::size_t out_before = out.size();
    const Status status = login.feed(stream.substr(fed, n), out);
    fed += n;
    FUZZ_CHECK(status == login.status());
    if (previous != Status::kInProgress) {
      // Over is over: nothing changes and nothing more is sent.
      FUZZ_CHECK(status == previous && out.size() == out_before);
    } else if (status != Status::kInProgress) {
      fed_at_end = fed;
    }
    previous = status;
  }

  if (login.status() == Status::kFailed) {
    FUZZ_CHECK(is_sqlstate(login.error().sqlstate));
    FUZZ_CHECK(login.leftover().empty());
    for (const auto& secret : secret_spellings()) {
      // The server may quote anything back at us; what it did not send must not appear.
      if (login.error().message.find(secret) != std::string::npos) {
        FUZZ_CHECK(stream.find(secret) != std::string_view::npos);
      }
    }
  } else if (login.status() == Status::kDone) {
    FUZZ_CHECK(login.leftover().size() <= fed_at_end);
    const std::size_t consumed = fed_at_end - login.leftover().size();
    check_done(login, stream.substr(0, consumed), stream.substr(consumed, login.leftover().size()));
  } else {
    FUZZ_CHECK(login.leftover().size() <= stream.size());
  }
}

// Frames and answers the client's 'p' messages with a real ScramServer, as PostgreSQL would.
class HonestServer {
 public:
  explicit HonestServer(protocol::ScramSecret secret) : scram_(std::move(secret)) {}

  std::string receive(std::string_view bytes) {
    in_.append(bytes);
    std::string out;
    if (!started_) {
      // The StartupMessage: skip it by its length word.
      if (in_.size() < 4) return out;
      protocol::Reader r(in_);
      const auto length = static_cast<std::size_t>(*r.int32());
      if (in_.size() < length) return out;
      in_.erase(0, length);
      started_ = true;
      protocol::write_authentication_sasl(out, {"SCRAM-SHA-256-PLUS", protocol::kScramSha256});
    }
    for (;;) {
      auto frame = protocol::decode_frame(in_, 1 << 16);
      FUZZ_CHECK(frame.has_value());
      if (!frame->has_value()) return out;
      const std::string body((*frame)->body);
      FUZZ_CHECK((*frame)->type == 'p');
      in_.erase(0, (*frame)->size);
      answer(body, out);
    }
  }

 private:
  void answer(std::string_view body, std::string& out) {
    if (!got_initial_) {
      got_initial_ = true;
      auto initial = protocol::parse_sasl_initial_response(body);
      FUZZ_CHECK(initial && initial->mechanism == protocol::kScramSha256);
      auto server_first = scram_.handle_client_first(initial->data);
      FUZZ_CHECK(server_first.has_value());
      protocol::write_authentication_sasl_continue(out, *server_first);
      return;
    }
    auto response = protocol::parse_sasl_response(body);
    FUZZ_CHECK(response.has_value());
    auto server_final = scram_.handle_client_final(*response);
    if (!server_final) {
      FUZZ_CHECK(server_final.error().sqlstate == "28P01");
      protocol::write_error_response(out, {protocol::Severity::kFatal, "28P01",
                                           "password authentication failed for user \"fuzzuser\"", "", ""});
      return;
    }
    protocol::write_authentication_sasl_final(out, *server_final);
    protocol::write_authentication_ok(out);
    protocol::write_parameter_status(out, "server_version", "16.2");
    protocol::write_backend_key_data(out, 7, 8);
    protocol::write_ready_for_query(out, 'I');
  }

  protocol::ScramServer scram_;
  std::string in_;
  bool started_ = false;
  bool got_initial_ = false;
};

void honest_server(fuzz::Input& in) {
  const std::uint8_t knobs = in.byte();
  const std::uint8_t position = in.byte();
  fuzz::Rng rng(in.u64());
  const int iterations = 1 + (knobs & 15);
  const bool flip = (knobs & 0x10) != 0;
  const bool with_keys = (knobs & 0x20) != 0;
  const bool flip_server_key = (knobs & 0x40) != 0;
  std::string salt(in.until_nul());
  std::string password(in.rest());
  if (salt.empty()) salt.push_back('s');  // not = "s": GCC 12 -O2 warns falsely (-Wrestrict)

  protocol::ScramSecret secret = protocol::make_scram_secret(password, salt, iterations);
  protocol::LoginCredentials credentials;
  if (with_keys) {
    protocol::ScramKeys keys = protocol::scram_keys_from_password(password, salt, iterations);
    auto& target = flip_server_key ? keys.server_key : keys.client_key;
    if (flip) target[position % target.size()] ^= static_cast<std::uint8_t>(1u << (position >> 5));
    credentials = keys;
  } else {
    std::string used = password;
    if (flip) {
      if (used.empty()) {
        used.push_back('x');
      } else {
        used[position % used.size()] ^= static_cast<char>(1u << (position >> 5));
      }
    }
    credentials = protocol::PlainPassword{used};
  }

  protocol::BackendLogin login(startup_params(), credentials);
  login.set_scram_max_iterations(16);
  HonestServer server(secret);
  std::string to_server = login.start();
  for (int round = 0; round < 8 && login.status() == Status::kInProgress; ++round) {
    const std::string to_client = server.receive(to_server);
    to_server.clear();
    FUZZ_CHECK(!to_client.empty());
    std::size_t fed = 0;
    while (fed < to_client.size() && login.status() == Status::kInProgress) {
      const std::size_t n = next_chunk(rng, to_client.size() - fed);
      (void)login.feed(std::string_view(to_client).substr(fed, n), to_server);
      fed += n;
    }
  }
  if (flip) {
    FUZZ_CHECK(login.status() == Status::kFailed);
    FUZZ_CHECK(login.error().sqlstate == "28P01");
  } else {
    FUZZ_CHECK(login.status() == Status::kDone);
    FUZZ_CHECK(login.backend_pid() == 7 && login.cancel_key() == 8 && login.params().size() == 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(fuzz::as_view(data, size));
  if ((in.byte() & 1) == 0) {
    hostile_server(in);
  } else {
    honest_server(in);
  }
  return 0;
}
