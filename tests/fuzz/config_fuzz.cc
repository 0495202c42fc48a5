// The config loader on arbitrary text: load_string must answer with a Config or a list of errors, never crash
// or let an exception out (libFuzzer counts an escaping exception as a crash). An accepted config must satisfy
// what validation promises; errors must be in file order with a place and a message; and loading is
// deterministic. Stored secrets the config accepts must be secrets to protocol/ too, or the daemon would take
// them for plain-text passwords.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/diff.h"
#include "config/hba.h"
#include "config/password_kind.h"
#include "protocol/md5_auth.h"
#include "protocol/scram.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace pooler;

const std::string kSource = "fuzz.toml";

void check_accepted(const config::Config& c) {
  FUZZ_CHECK(c.path == kSource);
  const config::Pooler& p = c.pooler;
  FUZZ_CHECK(!p.listen_addr.empty());
  FUZZ_CHECK(p.max_client_conn >= 1);
  FUZZ_CHECK(p.max_message_size >= 1024 && p.max_message_size <= 2147483647);
  FUZZ_CHECK(p.client_login_timeout.count() > 0 && p.health_check_period.count() > 0);
  FUZZ_CHECK(p.shutdown_timeout.count() >= 0);
  for (const auto& admin : p.admin_users) FUZZ_CHECK(c.find_user(admin) != nullptr);
  FUZZ_CHECK(p.max_db_connections >= 0 && p.max_user_connections >= 0);

  // [pooler.tls]: on only with a certificate and key; verifying client certificates needs their CA.
  const config::Tls& tls = p.tls;
  FUZZ_CHECK(tls.cert_file.empty() == tls.key_file.empty());
  FUZZ_CHECK(!tls.enabled() || !tls.cert_file.empty());
  if (tls.client_tls_mode == config::ClientTlsMode::kVerifyCa ||
      tls.client_tls_mode == config::ClientTlsMode::kVerifyFull) {
    FUZZ_CHECK(!tls.client_tls_ca.empty());
  }
  // [[pooler.hba]]: rules that can match, with canonical networks (no bits past the prefix).
  for (const config::HbaRule& rule : p.hba) {
    FUZZ_CHECK(rule.line >= 1);
    FUZZ_CHECK(!rule.databases.empty() && !rule.users.empty());
    if (rule.type == config::HbaType::kLocal) FUZZ_CHECK(!rule.address);
    FUZZ_CHECK(rule.address.has_value() == (rule.address_kind == config::HbaAddress::kCidr));
    if (rule.type == config::HbaType::kHostSsl) FUZZ_CHECK(tls.enabled());
    if (rule.method == config::HbaMethod::kCert) {
      FUZZ_CHECK(rule.type == config::HbaType::kHostSsl && !tls.client_tls_ca.empty());
    }
    if (rule.address) {
      const config::IpNet& net = *rule.address;
      FUZZ_CHECK(net.family == 4 || net.family == 6);
      const int bits = net.family == 4 ? 32 : 128;
      FUZZ_CHECK(net.prefix >= 0 && net.prefix <= bits);
      for (int bit = net.prefix; bit < 128; ++bit) {
        FUZZ_CHECK((net.bytes[static_cast<std::size_t>(bit / 8)] & (0x80 >> (bit % 8))) == 0);
      }
      // A network contains its own first address, and nothing of the other family.
      config::IpNet first = net;
      first.prefix = bits;
      FUZZ_CHECK(config::net_contains(net, first));
      config::IpNet other{};
      other.family = net.family == 4 ? 6 : 4;
      other.prefix = net.family == 4 ? 128 : 32;
      FUZZ_CHECK(!config::net_contains(net, other));
    }
  }
  // The first rule decides: a request shaped after rule i matches rule i or an earlier one.
  for (std::size_t i = 0; i < p.hba.size(); ++i) {
    const config::HbaRule& rule = p.hba[i];
    const std::string& db = rule.databases.front();
    const std::string& user = rule.users.front();
    config::HbaRequest request;
    config::IpNet self_interface{};  // samehost/samenet rules: the request comes from the host itself
    request.local = rule.type == config::HbaType::kLocal;
    request.ssl = rule.type == config::HbaType::kHostSsl;
    if (!request.local) {
      config::IpNet addr = rule.address.value_or(config::IpNet{});
      addr.prefix = addr.family == 4 ? 32 : 128;
      request.address = addr;
      self_interface = addr;
      request.interfaces = std::span<const config::IpNet>(&self_interface, 1);
    }
    // "sameuser" matches when the database is named like the user.
    request.user = user == "all" ? std::string_view("someone") : std::string_view(user);
    request.database = db == "all" ? std::string_view("somedb") : db == "sameuser" ? request.user : std::string_view(db);
    const config::HbaRule* matched = config::match_hba(p.hba, request);
    FUZZ_CHECK(matched != nullptr && matched >= p.hba.data() && matched <= &rule);
  }

  for (const auto& [name, db] : c.databases) {
    FUZZ_CHECK(db.name == name && !name.empty() && name != "pooler");
    FUZZ_CHECK(c.find_database(name) == &db);
    FUZZ_CHECK(!db.hosts.empty() && !db.dbname.empty());
    for (const auto& h : db.hosts) FUZZ_CHECK(!h.host.empty() && h.port >= 1);
    FUZZ_CHECK(db.pool_size >= 0 && db.max_overflow >= -1);
    FUZZ_CHECK(db.min_pool_size >= 0 && db.min_pool_size <= db.pool_size);
    FUZZ_CHECK(db.pool_timeout.count() > 0 && db.pre_ping_timeout.count() > 0 && db.connect_timeout.count() > 0);
    FUZZ_CHECK(db.pre_ping_after.count() >= 0);
    FUZZ_CHECK(!db.pool_recycle || db.pool_recycle->count() > 0);
    FUZZ_CHECK(!db.idle_timeout || db.idle_timeout->count() > 0);
    FUZZ_CHECK(!db.query_timeout || db.query_timeout->count() > 0);
    FUZZ_CHECK(!db.idle_transaction_timeout || db.idle_transaction_timeout->count() > 0);
    FUZZ_CHECK(db.max_prepared_statements >= 0);
    FUZZ_CHECK(!db.password || db.user);
  }
  for (const auto& [name, user] : c.users) {
    FUZZ_CHECK(user.name == name && !name.empty() && !user.password.empty());
    FUZZ_CHECK(c.find_user(name) == &user);
    // What the config calls a secret, the daemon must be able to use as one.
    const auto kind = config::classify_password(user.password);
    if (kind == config::PasswordKind::kScramSha256) FUZZ_CHECK(protocol::parse_scram_secret(user.password));
    if (kind == config::PasswordKind::kMd5) FUZZ_CHECK(protocol::is_md5_secret(user.password));
    if (kind == config::PasswordKind::kPlain) {
      FUZZ_CHECK(!protocol::is_scram_secret(user.password) && !protocol::is_md5_secret(user.password));
    }
  }
  // A reload of the same text changes nothing.
  FUZZ_CHECK(config::diff(c, c).empty());
}

void check_errors(const std::vector<config::ConfigError>& errors) {
  FUZZ_CHECK(!errors.empty());
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const config::ConfigError& e = errors[i];
    FUZZ_CHECK(e.file == kSource);
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(e.line >= 0 && e.column >= 0);
    FUZZ_CHECK(e.to_string().starts_with(kSource));
    if (i > 0) {
      const config::ConfigError& before = errors[i - 1];
      FUZZ_CHECK(before.line < e.line || (before.line == e.line && before.column <= e.column));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, size);
  auto loaded = config::load_string(text, kSource);
  if (loaded) {
    check_accepted(*loaded);
  } else {
    check_errors(loaded.error());
  }
  auto again = config::load_string(text, kSource);
  FUZZ_CHECK(again.has_value() == loaded.has_value());
  if (loaded) {
    FUZZ_CHECK(*again == *loaded);
  } else {
    FUZZ_CHECK(again.error() == loaded.error());
  }
  return 0;
}
